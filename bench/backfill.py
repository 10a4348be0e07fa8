"""Embedding backfill benchmark: `python bench/backfill.py [--chunks 2000]`.

How fast `knowledge.services.chunks_aux_backfill` (the beat task's body) gives chunks stored before the
embedding ensemble their bge-small-en vector: a Markdown handbook is parsed and chunked as ingestion does,
its chunks stored as a pre-ensemble document (first vector only, the first model's name), then the
backfill runs batch after batch (KNOWLEDGE_AUX_BACKFILL_BATCH_SIZE) until none is left. Reports chunks per
second and where the time goes (embedding vs the rest: lock, batch query, write transaction). Uses a
throw-away database (`bench_knowledge_backfill`). Prints a table; note `uptime` with the figures.
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
os.environ["BOTHERO_TEST_DB_NAME"] = "bench_knowledge_backfill"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000, help="about how many chunks to backfill")
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    from bench.ingest import markdown_document
    from bench.retrieval import prose_sentences

    rng = random.Random(7)
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=[])
    try:
        from bothero.testing.factories import BotFactory, TenantFactory
        from knowledge import parsing, services
        from knowledge.chunking import chunk_sections
        from knowledge.conf import configured_embedder
        from knowledge.models import Chunk, Document
        from knowledge.services import embedding_backfill

        data = markdown_document(prose_sentences(), words=int(args.chunks * 110), rng=rng).encode()
        embedder = configured_embedder()
        chunks = chunk_sections(
            parsing.parse_document(data, filename="handbook.md").sections,
            tokenizer=embedder.tokenizer,
            max_tokens=settings.KNOWLEDGE_CHUNK_TOKENS,
            overlap_tokens=settings.KNOWLEDGE_CHUNK_OVERLAP_TOKENS,
        )
        tenant = TenantFactory()
        bot = BotFactory(tenant=tenant)
        # Pre-ensemble documents of ~100 chunks each; the first vector is not read by the backfill.
        vectors = np.random.default_rng(7).standard_normal((len(chunks), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for first in range(0, len(chunks), 100):
            document = Document.objects.create(
                tenant=tenant,
                bot=bot,
                title=f"Handbook part {first // 100}",
                source_type="text",
                status="ready",
                embedding_model=embedder.model_name,
                embedding_dimension=384,
                chunk_count=len(chunks[first : first + 100]),
            )
            Chunk.objects.bulk_create(
                Chunk(
                    tenant=tenant,
                    bot=bot,
                    document=document,
                    position=position,
                    text=chunk.text,
                    heading=chunk.heading,
                    token_count=chunk.token_count,
                    embedding=vectors[first + position],
                )
                for position, chunk in enumerate(chunks[first : first + 100])
            )
        tokens = sum(chunk.token_count for chunk in chunks) / len(chunks)
        auxiliary = embedding_backfill.auxiliary_embedder()
        auxiliary.embed(["warm-up"])
        embedded_in = []

        class Timed:
            def embed(self, texts, batch_size=32):
                started = time.perf_counter()
                result = auxiliary.embed(texts, batch_size=batch_size)
                embedded_in.append(time.perf_counter() - started)
                return result

        embedding_backfill._auxiliary_or_none = Timed
        print(
            f"{len(chunks)} chunks ({tokens:.0f} tokens each on average) in {Document.objects.count()} documents; "
            f"batch {settings.KNOWLEDGE_AUX_BACKFILL_BATCH_SIZE}; load {os.getloadavg()[0]:.2f}"
        )
        started = time.perf_counter()
        batches = 0
        while True:
            result = services.chunks_aux_backfill()
            batches += 1
            if not result.more:
                break
        elapsed = time.perf_counter() - started
        left = Chunk.objects.filter(embedding_aux__isnull=True).count()
        renamed = Document.objects.exclude(embedding_model=embedder.model_name).count()
        embedding = sum(embedded_in)
        print("| chunks | batches | wall s | chunks/s | embedding s | rest s | left | documents renamed | load after |")
        print(
            f"| {len(chunks)} | {batches} | {elapsed:.1f} | {len(chunks) / elapsed:.1f} | {embedding:.1f} "
            f"| {elapsed - embedding:.2f} | {left} | {renamed}/{Document.objects.count()} | {os.getloadavg()[0]:.2f} |"
        )
    finally:
        teardown_databases(old_config, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
