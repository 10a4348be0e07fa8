"""Retrieval benchmark: `python bench/retrieval.py [--chunks 100000] [--layout single|bots|longtail] [--bots 1000] [--keep] [--reuse]`.

Builds a throw-away database holding `--chunks` chunks of one tenant, spread over bots by `--layout`:

* `single`: one bot holds them all;
* `bots`: `--bots` bots of equal size (`--bots 1000` at a million: each holds 0.1 %);
* `longtail`: bot sizes from a long-tailed distribution: five large bots (30, 15, 10, 5 and 5 % of
  the chunks), the rest many small ones (log-normal sizes, median 800 chunks).

Queries go to bots of every size class (≤1k, 1k–10k, 10k–100k, >100k chunks), a sentence taken
from one of the queried bot's chunks, embedded at query time. Per size class, in one run:

* recall@10 of the vector ranker `search` uses (the product path: exact for a bot up to
  KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS chunks, HNSW above) against the exact top 10 of the bot
  (computed in numpy from the loaded vectors; checked against the exact SQL scan on a few queries);
* recall@10 and latency of the HNSW path forced for every bot, at several `hnsw.ef_search`
  values (`--ef-search`), beside the exact scan's latency: where the two cross is the threshold;
* hybrid `search()` latency (query embedding + one SQL statement of full text + vector + fusion),
  p50/p99 of the first of `--rounds` interleaved rounds, and the p50 of each query's best round.

Before measuring, the bots above KNOWLEDGE_BOT_INDEX_MIN_CHUNKS get their own partial HNSW and GIN
indexes from the product's `knowledge.services.bot_indexes_sync` (timed; a kept database keeps them;
`--no-bot-indexes`: not); for those bots the run also times the same statements through the shared
indexes (their own dropped in a rolled-back transaction) and records which indexes each class's
statements use (EXPLAIN).

`--writes` then measures, on the loaded index, writing a 10,000-chunk document (the database part
of ingestion, `_document_finish`) and a whole ingestion of a ~350-chunk text document (parse, chunk,
embed, write), each beside the same write into the empty index (measured when the database was
created, with the same index settings; nothing else runs in the process during either), then search
latency while the 10,000-chunk document is deleted and while VACUUM then cleans the index, and that
reindexing one document leaves the HNSW index file in place (no rebuild).

The server's settings matter at a million chunks: give the embedded PostgreSQL `shared_buffers`
above the HNSW index (`ALTER SYSTEM SET shared_buffers = '4GB'`, then restart it) and `--warm`.

The data set. Text: chunks of 60–200 words of English prose assembled from consecutive docstring
sentences of the installed Python packages (deterministic, seed 42). Vectors: embedding a million
chunks with the local int8 MiniLM would take days on 2 cores, so `--real` chunks (default 20,000) are
real: manual page paragraphs (`--real-source man`, bench/real_passages.py; their text replaces the
chunk's) embedded with the real model (cached under var/), and every other chunk gets a synthetic unit
vector made from them (`--vectors`):

* `mixture` (default): `normalise(r_i + b·r_j + 0.6·g)`, r_i and r_j real embeddings, b ∈ [0, 0.6],
  g Gaussian noise: near one real vector, as the passages of one topic are. Each real vector is the
  main part of (chunks / real) synthetic ones, 50 at a million chunks and 20,000 real ones;
* `blend`: a random convex mixture of BLEND_PARTS real embeddings plus noise (no main part);
* `uniform`: uniformly random unit vectors (far from the real embeddings: the easy case).

bench/retrieval_generator.py compares each generator with real embeddings at sizes that can be
embedded (5,000–20,000), at the same ratio of synthetic to real vectors: `mixture` is as hard as or
harder than the real set at every size (`blend` is easier below 20,000). The ratio matters: with the
1,500 real vectors of earlier versions (~670 near-copies of each at a million) a query's neighbourhood
was a crowd of near-ties, far harder than the real embeddings.

With `--layout single` the queries are sentences of the real-embedded chunks (as earlier versions
of this benchmark); otherwise of any chunk of the queried bot.

`--keep` keeps the database, `--reuse` measures a kept one again (the layout, vectors and index
settings must match: they are stored in it). Writes bench/results/retrieval-<name>.json.
"""

import argparse
import ast
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import statistics
import sys
import sysconfig
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")

from real_passages import man_passages  # noqa: E402

from bench.common import ENSEMBLE_MODEL, BenchChunk, results_file, timed_document_write  # noqa: E402

# The `blend` generator: a random convex mixture of BLEND_PARTS real embeddings plus Gaussian
# noise of norm ~BLEND_NOISE (see the module's docstring and bench/retrieval_generator.py).
BLEND_PARTS = 3
BLEND_NOISE = 0.3
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
CONTROL = re.compile("[\x00-\x1f\x7f]")
DOCUMENT_CHUNKS = 500
SIZE_CLASSES = [("≤1k", 0, 1_000), ("1k–10k", 1_000, 10_000), ("10k–100k", 10_000, 100_000), (">100k", 100_000, None)]
DELETE_DOCUMENT_CHUNKS = 10_000
# How knowledge.sql.TEXT_HITS_BOT_ROWS reads the bot's rows (replaced by the table: the GIN path).
BOT_ROWS_SOURCE = (
    "(SELECT id, bot_id, search_vector FROM knowledge_chunk WHERE bot_id = %(bot_id)s OFFSET 0) AS bot_chunks"
)


def prose_sentences(limit: int = 400_000) -> list[str]:
    """English sentences from the docstrings of installed packages (real prose, no network); cached under var/."""
    cache = ROOT / "var" / "bench-prose-sentences.json"
    if cache.exists():
        return json.loads(cache.read_text())
    sentences = _collect_sentences(limit)
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps(sentences))
    return sentences


def _collect_sentences(limit: int) -> list[str]:
    site = Path(sysconfig.get_paths()["purelib"])
    sentences: list[str] = []
    for path in sorted(site.rglob("*.py")):
        if "/tests/" in str(path) or "/test/" in str(path):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
        except (SyntaxError, ValueError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if not doc:
                    continue
                for paragraph in doc.split("\n\n"):
                    paragraph = " ".join(paragraph.split())
                    if len(paragraph) < 40 or paragraph.count(">>>") or paragraph.count("::"):
                        continue
                    paragraph = CONTROL.sub(" ", paragraph)
                    sentences.extend(s for s in SENTENCE.split(paragraph) if 5 <= len(s.split()) <= 60)
        if len(sentences) >= limit:
            break
    return sentences


def make_chunks(sentences: list[str], count: int, rng: random.Random) -> list[str]:
    """`count` chunks of consecutive sentences."""
    chunks = []
    while len(chunks) < count:
        start = rng.randrange(len(sentences))
        words, parts = 0, []
        target = rng.randint(60, 200)
        for sentence in sentences[start : start + 40]:
            parts.append(sentence)
            words += len(sentence.split())
            if words >= target:
                break
        if words >= 40:
            chunks.append(" ".join(parts))
    return chunks


def bot_sizes(layout: str, chunks: int, bots: int, rng: random.Random) -> list[int]:
    if layout == "single":
        return [chunks]
    if layout == "bots":
        sizes = [chunks // bots] * bots
        sizes[0] += chunks - sum(sizes)
        return sizes
    sizes = [int(chunks * share) for share in (0.30, 0.15, 0.10, 0.05, 0.05)]
    while sum(sizes) < chunks:
        size = min(max(int(rng.lognormvariate(6.7, 1.3)), 20), 40_000, chunks - sum(sizes))
        sizes.append(size)
    return sizes


def size_class(size: int) -> str:
    for name, low, high in SIZE_CLASSES:
        if size > low and (high is None or size <= high):
            return name
    return SIZE_CLASSES[0][0]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float], best: list[float] | None = None) -> dict:
    result = {
        "p50": round(percentile(samples, 0.5), 2),
        "p99": round(percentile(samples, 0.99), 2),
        "mean": round(statistics.mean(samples), 2),
        "n": len(samples),
    }
    if best is not None:
        result["p50_best_round"] = round(percentile(best, 0.5), 2)
    return result


def vector_literal(vector) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


def normalised(vectors):
    import numpy as np

    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--layout", choices=["single", "bots", "longtail"], default="single")
    parser.add_argument("--bots", type=int, default=1000, help="bots of the `bots` layout")
    parser.add_argument("--vectors", choices=["mixture", "blend", "uniform"], default="mixture")
    parser.add_argument("--real", type=int, default=20_000, help="chunks embedded with the real model")
    parser.add_argument(
        "--real-source",
        choices=["man", "docstrings"],
        default="man",
        help="text of the real-embedded chunks: manual page paragraphs, or docstring chunks as the rest",
    )
    parser.add_argument("--queries", type=int, default=200, help="queries in all (spread over the size classes)")
    parser.add_argument("--bots-per-class", type=int, default=5, help="bots queried per size class")
    parser.add_argument("--rounds", type=int, default=2, help="times each hybrid query is timed")
    parser.add_argument("--ef-search", default="100,200,400,800", help="hnsw.ef_search values of the sweep")
    parser.add_argument(
        "--rerank", default="", help="HNSW candidate counts (beyond ef_search) re-ordered by distance, e.g. 2000,4000"
    )
    parser.add_argument("--warm", type=int, default=0, help="HNSW searches of other vectors before measuring")
    parser.add_argument("--exact-sql-queries", type=int, default=10, help="exact SQL scans timed per size class")
    parser.add_argument("--index-type", choices=["vector", "halfvec"], default="vector")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument(
        "--storage",
        choices=["main", "plain", "external"],
        default=None,
        help="storage of the embedding column (default: the migrations')",
    )
    parser.add_argument(
        "--no-hnsw",
        action="store_true",
        help="build no HNSW index (layouts whose bots are all searched exactly; no HNSW comparison)",
    )
    parser.add_argument("--writes", action="store_true", help="measure writes into the loaded index too")
    parser.add_argument("--vacuum", action="store_true", help="with --writes: VACUUM after the delete, searching")
    parser.add_argument("--name", help="database and result name (default: from the options)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure the database of a previous --keep run")
    parser.add_argument("--load-only", action="store_true", help="build (or reuse) the database, measure nothing")
    parser.add_argument(
        "--no-bot-indexes",
        action="store_true",
        help="do not give the bots above KNOWLEDGE_BOT_INDEX_MIN_CHUNKS their own indexes (the product does)",
    )
    args = parser.parse_args()
    args.real = min(args.real, args.chunks)
    layout = args.layout if args.layout != "bots" else f"{args.bots}bots"
    index = "no-hnsw" if args.no_hnsw else f"{args.index_type}-m{args.m}-ef{args.ef_construction}"
    index += f"-{args.storage}" if args.storage else ""
    name = args.name or f"{args.chunks}-{layout}-{args.vectors}-{index}"
    os.environ["BOTHERO_TEST_DB_NAME"] = "bench_retrieval_" + re.sub(r"\W", "_", name).lower()
    data_key = {
        "chunks": args.chunks,
        "layout": layout,
        "vectors": args.vectors,
        "real": args.real,
        "real_source": args.real_source,
        "index_type": args.index_type,
        "m": args.m,
        "ef_construction": args.ef_construction,
        "storage": args.storage,
        "hnsw": not args.no_hnsw,
    }

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    # Everything the run calls, imported now: a long run keeps measuring the code it started with.
    import knowledge.selectors
    import knowledge.services.ingestion
    import knowledge.sql  # noqa: F401

    report: dict = {
        "benchmark": "retrieval",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg(),
            "note": "shared: other processes ran on the machine (see the load averages)",
        },
        "data_set": dict(data_key),
    }
    old_config = setup_databases(verbosity=0, interactive=False, keepdb=args.reuse, serialized_aliases=[])
    try:
        from knowledge.conf import configured_embedder

        embedder = configured_embedder()
        report["machine"]["postgres"] = connection.pg_version
        with connection.cursor() as cursor:
            # What decides whether the HNSW graph stays in memory between searches.
            for setting in ("shared_buffers", "effective_cache_size", "work_mem", "max_parallel_workers_per_gather"):
                cursor.execute(f"SHOW {setting}")
                report["machine"].setdefault("postgres_settings", {})[setting] = cursor.fetchone()[0]
        dataset = data_set(args, embedder, report)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key jsonb, built jsonb)")
            cursor.execute("SELECT key, built FROM bench_meta")
            row = cursor.fetchone()
        # Django's psycopg backend hands jsonb back as text.
        stored_key, built = (
            (json.loads(value) if isinstance(value, str) else value for value in row) if row else (None, None)
        )
        if args.reuse and stored_key == data_key:
            print(f"Reusing the loaded database ({built['load_seconds']} s load, {built['index_seconds']} s indexes).")
        else:
            built = build(args, dataset, report)
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM bench_meta")
                cursor.execute(
                    "INSERT INTO bench_meta VALUES (%s::jsonb, %s::jsonb)", [json.dumps(data_key), json.dumps(built)]
                )
        report["build"] = built
        if args.load_only:
            return 0
        if not args.no_bot_indexes and not args.no_hnsw:
            report["bot_indexes"] = build_bot_indexes(dataset)
        report["settings"] = index_settings(args, settings)
        measure(args, dataset, report)
        if args.writes:
            measure_writes(args, dataset, report)
        report["machine"]["load_avg_at_end"] = os.getloadavg()
        out = results_file(f"retrieval-{name}.json")
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out}")
    finally:
        if not args.keep:
            teardown_databases(old_config, verbosity=0)
    return 0


# --------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------


class DataSet:
    def __init__(self, texts, vectors, sizes, bot_of_row):
        self.texts = texts
        self.vectors = vectors  # row r is chunk id r + 1
        self.sizes = sizes
        self.bot_of_row = bot_of_row  # index into sizes


def data_set(args, embedder, report) -> DataSet:
    """Texts, vectors and bot of every chunk (deterministic; embeddings cached under var/)."""
    import numpy as np

    rng = random.Random(42)
    np_rng = np.random.default_rng(42)
    started = time.perf_counter()
    sentences = prose_sentences()
    texts = make_chunks(sentences, args.chunks, rng)
    report["data_set"]["sentences_in_pool"] = len(sentences)
    print(f"Text: {len(texts)} chunks from {len(sentences)} sentences in {time.perf_counter() - started:.0f} s")
    if args.real_source == "man":
        # The real-embedded chunks are manual page paragraphs (their text goes with their vector).
        texts[: args.real] = man_passages(args.real)
        real = cached_embeddings(embedder, texts[: args.real], "man")
    else:
        real = cached_embeddings(embedder, texts[: args.real], "chunks")
    vectors = np.empty((args.chunks, real.shape[1]), dtype=np.float32)
    vectors[: args.real] = real
    vectors[args.real :] = synthetic_vectors(real, args.chunks - args.real, args.vectors, np_rng)

    sizes = bot_sizes(args.layout, args.chunks, args.bots, rng)
    # Documents of up to 500 chunks, in shuffled order (bots' documents interleave, as ingestion over
    # time does); the first documents hold the first rows (the real-embedded chunks) and go to bot 0.
    documents = []
    for bot, size in enumerate(sizes):
        documents += [(bot, min(DOCUMENT_CHUNKS, size - start)) for start in range(0, size, DOCUMENT_CHUNKS)]
    head = [d for d in documents if d[0] == 0][: -(-args.real // DOCUMENT_CHUNKS)]
    rest = documents[len(head) :]
    rng.shuffle(rest)
    bot_of_row = np.concatenate([np.full(n, bot, dtype=np.int32) for bot, n in head + rest])
    dataset = DataSet(texts, vectors, sizes, bot_of_row)
    dataset.documents = head + rest
    dataset.rng = rng
    return dataset


def synthetic_vectors(real, count: int, kind: str, np_rng):
    """`count` synthetic unit vectors made from the `real` embeddings (see the module's docstring)."""
    import numpy as np

    dimension = real.shape[1]
    out = np.empty((count, dimension), dtype=np.float32)
    for first in range(0, count, 100_000):  # in blocks: a million at once would need several GB
        n = min(100_000, count - first)
        noise = np_rng.standard_normal((n, dimension)).astype(np.float32) / np.sqrt(dimension)
        if kind == "uniform":
            bulk = noise
        elif kind == "mixture":
            main = real[np_rng.integers(0, len(real), n)]
            second = real[np_rng.integers(0, len(real), n)]
            bulk = main + np_rng.uniform(0, 0.6, (n, 1)).astype(np.float32) * second + 0.6 * noise
        else:  # blend
            weights = np_rng.dirichlet(np.ones(BLEND_PARTS), n).astype(np.float32)
            bulk = BLEND_NOISE * noise
            for part in range(BLEND_PARTS):
                bulk += weights[:, part : part + 1] * real[np_rng.integers(0, len(real), n)]
        out[first : first + n] = normalised(bulk)
    return out


def cached_embeddings(embedder, texts: list[str], kind: str):
    """Real embeddings of `texts`, cached under var/ by content (embedding is the slow part)."""
    import numpy as np

    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16]
    # By model too: vectors of another model (of the same dimension) must not be mixed with its queries.
    cache = ROOT / "var" / f"bench-embeddings-{kind}-{embedder.model_name}-{digest}.npy"
    if cache.exists():
        return np.load(cache)
    started = time.perf_counter()
    vectors = embedder.embed(texts, batch_size=64)
    seconds = time.perf_counter() - started
    print(f"Embedded {len(texts)} {kind} in {seconds:.0f} s ({len(texts) / seconds:.0f}/s)")
    cache.parent.mkdir(exist_ok=True)
    np.save(cache, vectors)
    return vectors


def query_from(text: str, rng: random.Random) -> str:
    parts = [s for s in SENTENCE.split(text) if 5 <= len(s.split()) <= 30]
    return rng.choice(parts) if parts else " ".join(text.split()[:15])


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def build(args, dataset: DataSet, report) -> dict:
    """Create the tenant, bots and documents, COPY the chunks in (indexes and constraints dropped, rebuilt after)."""
    from django.db import connection

    from bothero.testing.factories import BotFactory, TenantFactory
    from bots.models import Bot
    from knowledge.models import Chunk, Document

    Chunk.objects.all().delete()
    Document.objects.all().delete()
    Bot.objects.filter(name__startswith="Bench bot ").delete()
    tenant = TenantFactory()
    bots = [BotFactory(tenant=tenant, name=f"Bench bot {n}") for n in range(len(dataset.sizes))]
    built: dict = {}
    if args.writes:
        # Into the same kind of (empty) HNSW index as the loaded one will be.
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX chunk_embedding_shared_hnsw")
            cursor.execute(hnsw_index_definition(args))
        built["empty_index_write"] = write_document(tenant, bots[0], dataset, label="empty index")
        Chunk.objects.all().delete()
        built["empty_index_ingest"] = ingest_document(tenant, bots[0], label="empty index")
        Chunk.objects.all().delete()
        Document.objects.all().delete()

    started = time.perf_counter()
    now = datetime.now(UTC)
    documents = Document.objects.bulk_create(
        [
            Document(
                tenant=tenant,
                bot=bots[bot],
                title=f"Bench document {n}",
                source_type="text",
                content_type="text/plain",
                status="ready",
                progress=100,
                chunk_count=count,
                embedding_model="all-MiniLM-L6-v2-int8+bge-small-en-int8",
                embedding_dimension=384,
                ready_at=now,
            )
            for n, (bot, count) in enumerate(dataset.documents)
        ],
        batch_size=1000,
    )
    with connection.cursor() as cursor:
        dropped = drop_chunk_indexes(cursor)
        cursor.execute("TRUNCATE knowledge_lexemestat")
        if args.storage:
            cursor.execute(f"ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE {args.storage.upper()}")
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'knowledge_chunk'::regclass AND attname = 'embedding'"
        )
        built["embedding_storage"] = {"p": "plain", "m": "main", "e": "external", "x": "extended"}[cursor.fetchone()[0]]
    rows = []
    row = 0
    for document, (bot, count) in zip(documents, dataset.documents, strict=True):
        rows.append((row, count, document.pk, bots[bot].pk))
        row += count
    copy_chunks(rows, tenant.pk, dataset)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('knowledge_chunk', 'id'), %s)", [len(dataset.texts)])
        # Every bot's document frequencies (and total, the empty lexeme) in one pass over the chunks.
        cursor.execute(
            "INSERT INTO knowledge_lexemestat (bot_id, lexeme, chunk_count) "
            "SELECT bot_id, lexeme, count(*) FROM knowledge_chunk, unnest(tsvector_to_array(search_vector)) AS lexeme "
            "GROUP BY bot_id, lexeme UNION ALL SELECT bot_id, '', count(*) FROM knowledge_chunk GROUP BY bot_id"
        )
    built["load_seconds"] = round(time.perf_counter() - started, 1)
    print(f"Loaded {len(dataset.texts)} chunks in {built['load_seconds']} s")
    started = time.perf_counter()
    built["index_build_seconds"] = restore_chunk_indexes(args, dropped)
    built["index_seconds"] = round(time.perf_counter() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'knowledge_chunk'::regclass ORDER BY 1"
        )
        built["index_mb"] = {name: round(size / 2**20, 1) for name, size in cursor.fetchall()}
        cursor.execute("SELECT pg_relation_size('knowledge_chunk') + pg_relation_size(reltoastrelid) FROM pg_class "
                       "WHERE oid = 'knowledge_chunk'::regclass")  # fmt: skip
        built["table_mb"] = round(cursor.fetchone()[0] / 2**20, 1)
        cursor.execute("SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'knowledge_chunk'::regclass")
        built["toast_mb"] = round(cursor.fetchone()[0] / 2**20, 1)
    print(
        f"Indexes built in {built['index_seconds']} s: {built['index_build_seconds']}, sizes (MB) {built['index_mb']}"
    )
    return built


def drop_chunk_indexes(cursor) -> list[tuple[str, str]]:
    """Drop every index and constraint of knowledge_chunk but its primary key; returns how to recreate them."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'knowledge_chunk'::regclass AND contype IN ('u', 'f')"
    )
    constraints = cursor.fetchall()
    for name, _definition in constraints:
        cursor.execute(f'ALTER TABLE knowledge_chunk DROP CONSTRAINT "{name}"')
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'knowledge_chunk'::regclass AND NOT i.indisprimary"
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [("constraint", f'ALTER TABLE knowledge_chunk ADD CONSTRAINT "{name}" {definition}')
            for name, definition in constraints] + [("index", definition) for _name, definition in indexes]  # fmt: skip


def hnsw_index_definition(args) -> str:
    column = (
        "(embedding::halfvec(384)) halfvec_cosine_ops"
        if args.index_type == "halfvec"
        else "embedding vector_cosine_ops"
    )
    return (
        f"CREATE INDEX chunk_embedding_shared_hnsw ON knowledge_chunk USING hnsw ({column}) "
        f"WITH (m = {args.m}, ef_construction = {args.ef_construction}) WHERE in_shared_index"
    )


def restore_chunk_indexes(args, dropped) -> dict:
    """Recreate the dropped indexes (the HNSW one with the benchmark's settings); seconds per statement."""
    from django.db import connection

    seconds = {}
    with connection.cursor() as cursor:
        # The whole HNSW graph in memory while it is built (a graph that does not fit is built far slower).
        cursor.execute("SET maintenance_work_mem = '4GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
        for kind, definition in dropped:
            if "USING hnsw" in definition:
                if args.no_hnsw:
                    continue
                definition = hnsw_index_definition(args)
            started = time.perf_counter()
            cursor.execute(definition)
            label = re.search(r'(?:INDEX|CONSTRAINT) "?(\w+)', definition).group(1)
            seconds[label] = round(time.perf_counter() - started, 1)
            print(f"  {kind} {label}: {seconds[label]} s", flush=True)
        cursor.execute("ANALYZE knowledge_chunk")
        cursor.execute("ANALYZE knowledge_lexemestat")
    return seconds


def copy_chunks(rows, tenant_id: int, dataset: DataSet) -> None:
    """Binary COPY of the chunks on two connections at once (the server computes each row's tsvector)."""
    import psycopg
    from django.db import connection
    from pgvector.psycopg import register_vector

    from bothero.ids import new_public_id

    params = connection.get_connection_params()
    errors = []

    def copy_part(part):
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                register_vector(conn)
                with conn.cursor() as cursor:
                    cursor.execute("SET synchronous_commit = off")
                    for first, count, document_id, bot_id in part:
                        with cursor.copy(
                            "COPY knowledge_chunk (id, public_id, tenant_id, bot_id, document_id, position, text, "
                            "heading, page, token_count, embedding, embedding_aux) FROM STDIN WITH (FORMAT BINARY)"
                        ) as copy:
                            copy.set_types(
                                [
                                    "int8",
                                    "varchar",
                                    "int8",
                                    "int8",
                                    "int8",
                                    "int4",
                                    "text",
                                    "text",
                                    "int4",
                                    "int4",
                                    "vector",
                                    "vector",
                                ]
                            )
                            for position in range(count):
                                row = first + position
                                text = dataset.texts[row]
                                copy.write_row(
                                    (
                                        row + 1,
                                        new_public_id("chk"),
                                        tenant_id,
                                        bot_id,
                                        document_id,
                                        position,
                                        text,
                                        None,
                                        None,
                                        len(text.split()),
                                        dataset.vectors[row],
                                        # The ensemble's second vector (bge-small-en's, unindexed): only its
                                        # size matters here, search reads it for the ~40 candidates.
                                        dataset.vectors[row],
                                    )
                                )
        except Exception as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=copy_part, args=(rows[n::2],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def build_bot_indexes(dataset: DataSet) -> dict:
    """Give every bot above KNOWLEDGE_BOT_INDEX_MIN_CHUNKS its own indexes, as the product's task does
    (`knowledge.services.bot_indexes_sync`: CREATE INDEX CONCURRENTLY); a kept database keeps them."""
    from django.conf import settings
    from django.db import connection

    from knowledge import services, sql

    result: dict = {"min_chunks": settings.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS,
                    "build_memory": settings.KNOWLEDGE_BOT_INDEX_BUILD_MEMORY, "bots": []}  # fmt: skip
    started = time.perf_counter()
    for bot, size in zip(bench_bots(), dataset.sizes, strict=True):
        if size <= settings.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS:
            continue
        bot_started = time.perf_counter()
        done = services.bot_indexes_sync(bot_id=bot.pk)
        seconds = round(time.perf_counter() - bot_started, 1)
        with connection.cursor() as cursor:
            sizes = {}
            for kind in sql.BOT_INDEX_KINDS:
                cursor.execute("SELECT pg_relation_size(to_regclass(%s))", [sql.bot_index_name(bot.pk, kind)])
                sizes[kind] = round((cursor.fetchone()[0] or 0) / 2**20, 1)
        result["bots"].append({"chunks": size, "done": done, "seconds": seconds, "mb": sizes})
        print(f"  own indexes of a {size}-chunk bot: {done or 'already there'} in {seconds} s, {sizes} MB", flush=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["mb"] = {kind: round(sum(b["mb"][kind] for b in result["bots"]), 1) for kind in sql.BOT_INDEX_KINDS}
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_chunk")
    return result


@contextlib.contextmanager
def without_own_index(bot_id: int, kind: str):
    """A cursor in a transaction where the bot's own index of this kind is dropped, rolled back afterwards
    (the index comes back), so the same statement goes through the shared index."""
    from django.db import connection, transaction

    from knowledge import sql

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX IF EXISTS "{sql.bot_index_name(bot_id, kind)}"')
        yield cursor
        transaction.set_rollback(True)


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


def index_settings(args, settings) -> dict:
    return {
        "hnsw": None
        if args.no_hnsw
        else {
            "type": args.index_type,
            "m": args.m,
            "ef_construction": args.ef_construction,
            "ef_search": settings.KNOWLEDGE_HNSW_EF_SEARCH,
            "iterative_scan": "relaxed_order",
        },
        "candidates_per_ranker": settings.KNOWLEDGE_SEARCH_CANDIDATES,
        "exact_search_max_chunks": settings.KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS,
        "bot_indexes": None
        if args.no_bot_indexes or args.no_hnsw
        else {
            "min_chunks": settings.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS,
            "drop_below_chunks": settings.KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS,
            "ef_search": settings.KNOWLEDGE_BOT_INDEX_EF_SEARCH,
            "m": 16,
            "ef_construction": 64,
        },
    }


def hnsw_sql(index_type: str) -> str:
    """The shared-graph HNSW ranker's SQL as `search` runs it (with a halfvec index: its candidates re-ordered by
    full distance)."""
    from knowledge.sql import SHARED_VECTOR_HITS

    if index_type == "vector":
        return SHARED_VECTOR_HITS
    ordered = "ORDER BY embedding <=> %(vector)s::vector"
    assert ordered in SHARED_VECTOR_HITS
    return SHARED_VECTOR_HITS.replace(ordered, "ORDER BY embedding::halfvec(384) <=> %(vector)s::halfvec(384)")


def bench_bots() -> list:
    """The loaded bots, in the order of the layout's sizes."""
    from bots.models import Bot

    tenant_id = Bot.objects.filter(name="Bench bot 0").latest("pk").tenant_id
    bots = list(Bot.objects.filter(tenant_id=tenant_id, name__startswith="Bench bot ").select_related("tenant"))
    return sorted(bots, key=lambda bot: int(bot.name.rsplit(" ", 1)[1]))


def measure(args, dataset: DataSet, report) -> None:
    import numpy as np
    from django.db import connection, transaction

    from knowledge.conf import configured_embedder
    from knowledge.selectors import (
        _bot_chunk_count,
        _text_hits_sql,
        _vector_hits_sql,
        bot_own_indexes,
        query_embeddings,
        search,
    )
    from knowledge.sql import EXACT_VECTOR_HITS

    embedder = configured_embedder()
    rng = random.Random(7)
    bots = bench_bots()
    tenant = bots[0].tenant
    rows_of_bot: dict[int, np.ndarray] = {}
    order = np.argsort(dataset.bot_of_row, kind="stable")
    bounds = np.searchsorted(dataset.bot_of_row[order], np.arange(len(dataset.sizes) + 1))
    for index in range(len(dataset.sizes)):
        rows_of_bot[index] = order[bounds[index] : bounds[index + 1]]

    # Queried bots: up to --bots-per-class of each size class; queries spread evenly over the classes.
    by_class: dict[str, list[int]] = {}
    for index, size in enumerate(dataset.sizes):
        by_class.setdefault(size_class(size), []).append(index)
    classes = [name for name, *_ in SIZE_CLASSES if name in by_class]
    per_class = max(1, args.queries // len(classes))
    plan = []  # (class, bot index, query)
    for name in classes:
        picked = rng.sample(by_class[name], min(args.bots_per_class, len(by_class[name])))
        for n in range(per_class):
            bot_index = picked[n % len(picked)]
            if args.layout == "single":  # as the earlier versions of this benchmark: from the real-embedded chunks
                row = rng.randrange(args.real)
            else:
                row = int(rng.choice(rows_of_bot[bot_index]))
            plan.append((name, bot_index, query_from(dataset.texts[row], rng)))
    print(f"{len(plan)} queries over {len(classes)} size classes: " + ", ".join(
        f"{name} ({len(by_class[name])} bots)" for name in classes))  # fmt: skip
    query_vectors = embedder.embed([query for _, _, query in plan])

    # Chunk id of each row: loaded as row + 1, but a reindexed document's chunks (--writes) got new ids.
    id_of_row = np.arange(1, len(dataset.texts) + 1)
    first_row = np.cumsum([0] + [count for _bot, count in dataset.documents])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT substr(d.title, 16)::int, c.position, c.id FROM knowledge_chunk c "
            "JOIN knowledge_document d ON d.id = c.document_id "
            "WHERE d.title LIKE 'Bench document %%' AND c.id > %s",
            [len(dataset.texts)],
        )
        for number, position, pk in cursor.fetchall():
            id_of_row[first_row[number] + position] = pk
    # The exact top 10 of each query in its bot, from the loaded vectors (a bot's queries together).
    exact_ids: list[list[int]] = [[] for _ in plan]
    for bot_index in sorted({bot_index for _, bot_index, _ in plan}):
        rows = rows_of_bot[bot_index]
        mine = [i for i, (_, b, _) in enumerate(plan) if b == bot_index]
        bot_vectors = dataset.vectors if len(rows) == len(dataset.vectors) else dataset.vectors[np.sort(rows)]
        rows = np.arange(len(rows)) if len(rows) == len(dataset.vectors) else np.sort(rows)
        for first in range(0, len(mine), 50):
            block = mine[first : first + 50]
            distances = 1 - bot_vectors @ query_vectors[block].T
            for column, i in enumerate(block):
                nearest = np.argpartition(distances[:, column], min(30, len(rows) - 1))[:30]
                nearest = nearest[np.lexsort((nearest, distances[nearest, column]))][:10]
                exact_ids[i] = [int(id_of_row[row]) for row in rows[nearest]]

    for _name, bot_index, query in plan[:10]:  # warm up: model, connection, buffer cache
        search(tenant=tenant, bot=bots[bot_index], query=query, top_k=5)

    ef_values = [] if args.no_hnsw else [int(value) for value in args.ef_search.split(",")]
    rerank_counts = [int(value) for value in args.rerank.split(",")] if args.rerank and ef_values else []
    hnsw = hnsw_sql(args.index_type)
    results: dict[str, dict] = {name: {"recall": {}, "latency": {}} for name in classes}

    def timed_ids(cursor, sql, params):
        started = time.perf_counter()
        cursor.execute(f"SELECT id FROM ({sql}) AS hits ORDER BY rank LIMIT 10", params)
        ids = [row[0] for row in cursor.fetchall()]
        return ids, (time.perf_counter() - started) * 1000

    def record(name, kind, key, value):
        results[name][kind].setdefault(key, []).append(value)

    if args.warm and ef_values:
        # Searches for other vectors first, so the HNSW graph's pages are in shared buffers as on a
        # server that has been answering for a while (no pg_prewarm in the embedded PostgreSQL).
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.ef_search', %s, true)",
                [str(max(ef_values))],
            )
            for row in np.random.default_rng(1).integers(0, len(dataset.texts), args.warm):
                bot = bots[dataset.bot_of_row[row]]
                cursor.execute(
                    f"SELECT count(*) FROM ({hnsw}) AS hits",
                    {"bot_id": bot.pk, "candidates": 20, "vector": vector_literal(dataset.vectors[row])},
                )
        report["warm_up"] = {"hnsw_searches": args.warm, "seconds": round(time.perf_counter() - started, 1)}
        print(f"Warm-up: {report['warm_up']}")

    exact_sql_done: dict[str, int] = {}
    plans: dict[str, dict] = {}
    per_bot: dict[int, dict] = {}
    for (name, bot_index, query), vector, exact in zip(plan, query_vectors, exact_ids, strict=True):
        bot = bots[bot_index]
        params = {"bot_id": bot.pk, "tenant_id": tenant.pk, "candidates": 20, "vector": vector_literal(vector)}
        bot_stats = per_bot.setdefault(bot_index, {"chunks": dataset.sizes[bot_index], "hnsw_ms": [], "exact_ms": [],
                                                   "hnsw_recall": []})  # fmt: skip
        # The product path, outside a transaction as `search` runs in production.
        with connection.cursor() as cursor:
            bot_chunks = _bot_chunk_count(cursor, bot=bot)
            own = bot_own_indexes(cursor, bot.pk, bot_chunks)
            sql = _vector_hits_sql(cursor, bot_chunks, params, own)
            ids, ms = timed_ids(cursor, sql, params)
        record(name, "recall", "search vector ranker", len(set(ids) & set(exact)) / 10)
        record(name, "latency", "search vector ranker (SQL)", ms)
        if name not in plans:  # which indexes the product's statements go through, once per class
            with connection.cursor() as cursor:
                text_params = {"bot_id": bot.pk, "tenant_id": tenant.pk, "candidates": 20}
                text_sql, *_ = _text_hits_sql(cursor, bot=bot, query=query, params=text_params)
                plans[name] = {}
                for ranker, statement, ranker_params in (("vector", sql, params), ("full text", text_sql, text_params)):
                    if statement:
                        cursor.execute(f"EXPLAIN SELECT id FROM ({statement}) AS hits", ranker_params)
                        plan_text = " ".join(row[0] for row in cursor.fetchall())
                        plans[name][ranker] = sorted(set(re.findall(r"Index Scan (?:using|on) (\w+)", plan_text)))
        if "hnsw" in own:
            # The same bot through the shared graph, as before it had its own (its own dropped, rolled back).
            with without_own_index(bot.pk, "hnsw") as cursor:
                shared_sql = _vector_hits_sql(cursor, bot_chunks, params)
                ids, ms = timed_ids(cursor, shared_sql, params)
            record(name, "recall", "vector ranker through the shared graph", len(set(ids) & set(exact)) / 10)
            record(name, "latency", "vector ranker through the shared graph (SQL)", ms)
        # The full-text ranker as `search` plans it (from the bot's own rows or through the GIN index).
        with connection.cursor() as cursor:
            text_params = {"bot_id": bot.pk, "tenant_id": tenant.pk, "candidates": 20}
            text_sql, *_ = _text_hits_sql(cursor, bot=bot, query=query, params=text_params)
            if text_sql:
                path = "bot rows" if "AS bot_chunks" in text_sql else "own GIN" if "gin" in own else "GIN"
                started = time.perf_counter()
                cursor.execute(f"SELECT count(*) FROM ({text_sql}) AS text_hits", text_params)
                cursor.fetchall()
                record(
                    name, "latency", f"search full-text ranker via {path} (SQL)", (time.perf_counter() - started) * 1000
                )
                if path == "own GIN":  # the same statement through the shared GIN index (own dropped, rolled back)
                    with without_own_index(bot.pk, "gin") as shared_cursor:
                        started = time.perf_counter()
                        shared_cursor.execute(f"SELECT count(*) FROM ({text_sql}) AS text_hits", text_params)
                        shared_cursor.fetchall()
                        elapsed = (time.perf_counter() - started) * 1000
                    record(name, "latency", "full-text ranker through the shared GIN (SQL)", elapsed)
                if path == "bot rows":  # the same statement through the GIN index, as before
                    gin_sql = text_sql.replace(BOT_ROWS_SOURCE, "knowledge_chunk")
                    assert gin_sql != text_sql
                    started = time.perf_counter()
                    cursor.execute(f"SELECT count(*) FROM ({gin_sql}) AS text_hits", text_params)
                    cursor.fetchall()
                    record(
                        name, "latency", "full-text ranker forced via GIN (SQL)", (time.perf_counter() - started) * 1000
                    )
        # The HNSW path forced, at each ef_search.
        for ef in ef_values:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('hnsw.ef_search', %s, true)",
                    [str(ef)],
                )
                ids, ms = timed_ids(cursor, hnsw, params)
            record(name, "recall", f"hnsw ef_search={ef}", len(set(ids) & set(exact)) / 10)
            record(name, "latency", f"hnsw ef_search={ef} (SQL)", ms)
            if ef == report["settings"]["hnsw"]["ef_search"]:
                bot_stats["hnsw_ms"].append(ms)
                bot_stats["hnsw_recall"].append(len(set(ids) & set(exact)) / 10)
        # More HNSW candidates than ef_search (the iterative scan goes on searching), re-ordered by distance.
        for count in rerank_counts:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('hnsw.ef_search', %s, true), set_config('hnsw.max_scan_tuples', %s, true)",
                    [str(max(ef_values)), str(max(20_000, 4 * count))],
                )
                ids, ms = timed_ids(cursor, hnsw, params | {"candidates": count})
            key = f"hnsw ef_search={max(ef_values)}, top {count} re-ordered"
            record(name, "recall", key, len(set(ids) & set(exact)) / 10)
            record(name, "latency", key + " (SQL)", ms)
        # The exact scan, on a few queries per class (a million-row scan takes seconds).
        if exact_sql_done.get(name, 0) < args.exact_sql_queries:
            exact_sql_done[name] = exact_sql_done.get(name, 0) + 1
            with connection.cursor() as cursor:
                ids, ms = timed_ids(cursor, EXACT_VECTOR_HITS, params)
            record(name, "recall", "exact SQL scan vs numpy", len(set(ids) & set(exact)) / 10)
            record(name, "latency", "exact scan (SQL)", ms)
            bot_stats["exact_ms"].append(ms)

    # Hybrid search() (the chat engine's entry point) and the query embedding alone, interleaved rounds.
    rounds = {"hybrid search()": [], "embed query only": []}
    for _ in range(args.rounds):
        for key, call in (
            ("embed query only", lambda bot, q: query_embeddings(q)),  # both models of the ensemble
            ("hybrid search()", lambda bot, q: search(tenant=tenant, bot=bot, query=q, top_k=5)),
        ):
            samples = []
            for _name, bot_index, query in plan:
                started = time.perf_counter()
                call(bots[bot_index], query)
                samples.append((time.perf_counter() - started) * 1000)
            rounds[key].append(samples)

    report["plans"] = plans
    report["size_classes"] = {}
    for name in classes:
        indexes = [i for i, (n, _, _) in enumerate(plan) if n == name]
        entry = {
            "bots": len(by_class[name]),
            "chunks_per_bot": [
                min(dataset.sizes[i] for i in by_class[name]),
                max(dataset.sizes[i] for i in by_class[name]),
            ],
            "queried_bots": len({plan[i][1] for i in indexes}),
            "queries": len(indexes),
            "recall_at_10_vs_exact": {key: round(statistics.mean(v), 4) for key, v in results[name]["recall"].items()},
            "latency_ms": {},
        }
        for key, samples in rounds.items():
            first = [samples[0][i] for i in indexes]
            best = [min(r[i] for r in samples) for i in indexes]
            entry["latency_ms"][key] = summary(first, best if args.rounds > 1 else None)
        for key, samples in results[name]["latency"].items():
            entry["latency_ms"][key] = summary(samples)
        report["size_classes"][name] = entry
    report["per_bot"] = [
        {
            "chunks": stats["chunks"],
            "hnsw_ms_p50": round(percentile(stats["hnsw_ms"], 0.5), 2) if stats["hnsw_ms"] else None,
            "hnsw_recall": round(statistics.mean(stats["hnsw_recall"]), 4) if stats["hnsw_recall"] else None,
            "exact_ms_p50": round(percentile(stats["exact_ms"], 0.5), 2) if stats["exact_ms"] else None,
        }
        for stats in sorted(per_bot.values(), key=lambda s: s["chunks"])
    ]
    print_report(report)


def print_report(report) -> None:
    print(f"\nsettings: {json.dumps(report['settings'])}")
    print(f"indexes the product's statements use, per class: {json.dumps(report.get('plans'), ensure_ascii=False)}")
    for name, entry in report["size_classes"].items():
        print(f"\n== bots of {name} chunks: {entry['bots']} bots ({entry['chunks_per_bot'][0]}–{entry['chunks_per_bot'][1]}), "
              f"{entry['queries']} queries on {entry['queried_bots']}")  # fmt: skip
        for key, value in entry["recall_at_10_vs_exact"].items():
            print(f"  recall@10 {key:40s} {value:.4f}")
        print(f"  {'latency ms':50s} {'p50':>8s} {'p99':>8s} {'mean':>8s} {'best p50':>8s}")
        for key, value in entry["latency_ms"].items():
            best = value.get("p50_best_round")
            best_text = f" {best:8.2f}" if best is not None else ""
            print(f"  {key:50s} {value['p50']:8.2f} {value['p99']:8.2f} {value['mean']:8.2f}{best_text}")
    print("\nper bot (chunks: HNSW p50 ms / recall, exact scan p50 ms):")
    for row in report["per_bot"]:
        print(f"  {row['chunks']:>8d}: {row['hnsw_ms_p50']} / {row['hnsw_recall']}, {row['exact_ms_p50']}")


# --------------------------------------------------------------------------
# Writes
# --------------------------------------------------------------------------


def write_document(tenant, bot, dataset: DataSet, *, label: str) -> dict:
    """Write a 10,000-chunk document as ingestion's last step does (one transaction: chunks, statistics, status)."""
    import numpy as np

    count = min(DELETE_DOCUMENT_CHUNKS, len(dataset.texts))
    # Near the loaded chunks' vectors, not copies of them.
    noise = np.random.default_rng(count).standard_normal((count, dataset.vectors.shape[1])).astype(np.float32)
    vectors = normalised(dataset.vectors[:count] + 0.02 * noise)
    document, seconds = timed_document_write(
        tenant, bot, dataset.texts[:count], vectors, title=f"Bench write ({label})"
    )
    result = {"chunks": count, "seconds": round(seconds, 2), "chunks_per_s": round(count / seconds, 1)}
    print(f"Wrote a {count}-chunk document into the {label}: {result}")
    return result | {"document_id": document.pk}


INGEST_PASSAGES = range(19_000, 20_000)  # ~46,000 words of manual pages: ~250 chunks


def ingest_document(tenant, bot, *, label: str) -> dict:
    """A whole ingestion (parse, chunk, embed with the real model, write) of a plain-text document."""
    from bothero.ids import new_public_id
    from knowledge.models import Document
    from knowledge.services.ingestion import document_ingest

    passages = man_passages(INGEST_PASSAGES.stop)
    text = "\n\n".join(passages[n] for n in INGEST_PASSAGES)
    claim = new_public_id("bench")
    document = Document.objects.create(
        tenant=tenant, bot=bot, title=f"Bench ingest ({label})", source_type="text", content_type="text/plain",
        status="queued", text=text, size_bytes=len(text.encode()),
    )  # fmt: skip
    started = time.perf_counter()
    document = document_ingest(document_id=document.pk, claim_token=claim)
    seconds = time.perf_counter() - started
    if document is None or document.status != "ready":
        raise RuntimeError(f"the bench document was not ingested: {document and document.error_message}")
    count = document.chunk_count
    result = {"chunks": count, "seconds": round(seconds, 2), "chunks_per_s": round(count / seconds, 2)}
    print(f"Ingested a {count}-chunk text document into the {label}: {result}", flush=True)
    return result | {"document_id": document.pk}


def measure_writes(args, dataset: DataSet, report) -> None:
    from django.db import connection

    from knowledge import services
    from knowledge.models import Document
    from knowledge.selectors import search

    bots = bench_bots()
    tenant = bots[0].tenant
    writes: dict = {
        "empty_index": report["build"].get("empty_index_write"),
        "empty_index_ingest": report["build"].get("empty_index_ingest"),
    }
    # Writes into the loaded index as into the empty one: nothing else running in this process.
    written = write_document(tenant, bots[0], dataset, label="loaded index")
    writes["loaded_index"] = {k: v for k, v in written.items() if k != "document_id"}
    ingested = ingest_document(tenant, bots[0], label="loaded index")
    writes["loaded_index_ingest"] = {k: v for k, v in ingested.items() if k != "document_id"}
    services.document_delete(document=Document.objects.get(pk=ingested["document_id"]))
    # Searches of the written bot (bot 0) go on in another thread; their latency before, during each write.
    queries = [query_from(dataset.texts[row % len(dataset.texts)], random.Random(row)) for row in range(0, 40 * 97, 97)]
    phase = {"name": "before"}
    samples: dict[str, list[float]] = {}
    stop = threading.Event()

    def searching():
        try:
            n = 0
            while not stop.is_set():
                started = time.perf_counter()
                search(tenant=tenant, bot=bots[0], query=queries[n % len(queries)], top_k=5)
                samples.setdefault(phase["name"], []).append((time.perf_counter() - started) * 1000)
                n += 1
        finally:
            connection.close()

    searcher = threading.Thread(target=searching)
    searcher.start()
    try:
        time.sleep(10)
        document = Document.objects.get(pk=written["document_id"])
        phase["name"] = "during the 10k-chunk delete"
        started = time.perf_counter()
        services.document_delete(document=document)
        writes["delete_seconds"] = round(time.perf_counter() - started, 2)
        if args.vacuum:
            phase["name"] = "during VACUUM of knowledge_chunk"
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM knowledge_chunk")
            writes["vacuum_seconds"] = round(time.perf_counter() - started, 2)
        phase["name"] = "after"
        time.sleep(5)
        # Reindexing one of the bot's documents: chunks out and in again, the HNSW index kept (same file).
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_filenode('chunk_embedding_shared_hnsw')")
            before = cursor.fetchone()[0]
        phase["name"] = "during a reindex of one document"
        document = Document.objects.filter(bot=bots[0], title__startswith="Bench document ").order_by("pk").first()
        started = time.perf_counter()
        reindex_document(document, dataset)
        writes["reindex_one_document_seconds"] = round(time.perf_counter() - started, 2)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_filenode('chunk_embedding_shared_hnsw')")
            writes["reindex_kept_the_hnsw_index_file"] = cursor.fetchone()[0] == before
    finally:
        stop.set()
        searcher.join()
    writes["search_latency_ms"] = {name: summary(values) for name, values in samples.items() if values}
    if writes["empty_index"]:
        writes["loaded_vs_empty_chunks_per_s"] = round(
            writes["loaded_index"]["chunks_per_s"] / writes["empty_index"]["chunks_per_s"], 3
        )
    if writes["empty_index_ingest"]:
        writes["ingest_loaded_vs_empty_chunks_per_s"] = round(
            writes["loaded_index_ingest"]["chunks_per_s"] / writes["empty_index_ingest"]["chunks_per_s"], 3
        )
    report["writes"] = writes
    print(json.dumps(writes, indent=2))


def reindex_document(document, dataset: DataSet) -> None:
    """What reindexing a document writes: its chunks out (`document_reindex`), then in again as ingestion's
    last step writes them (parsing and embedding left out)."""
    from django.db import transaction

    from bothero.ids import new_public_id
    from knowledge import services
    from knowledge.models import Document
    from knowledge.services.ingestion import _document_finish

    number = int(document.title.rsplit(" ", 1)[1])  # "Bench document <n>": rows follow the documents' order
    first = 1 + sum(count for _bot, count in dataset.documents[:number])
    count = document.chunk_count
    claim = new_public_id("bench")
    with transaction.atomic():  # what `document_reindex` writes, without queueing an ingestion task
        services.chunks_delete(document=document)
        Document.objects.filter(pk=document.pk).update(status="processing", claim_token=claim, chunk_count=0)
    rows = range(first - 1, first - 1 + count)
    _document_finish(
        document_id=document.pk, claim_token=claim,
        chunks=[BenchChunk(position, dataset.texts[row]) for position, row in enumerate(rows)],
        vectors=dataset.vectors[first - 1 : first - 1 + count],
        aux_vectors=dataset.vectors[first - 1 : first - 1 + count],
        embedding_model=ENSEMBLE_MODEL, embedding_dimension=384,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
