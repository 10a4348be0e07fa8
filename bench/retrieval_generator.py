"""Are bench/retrieval.py's synthetic vectors as hard for HNSW as real embeddings? `python bench/retrieval_generator.py`.

bench/retrieval.py cannot embed a million chunks on this machine, so it embeds `--real` of them and
makes the rest from those (`synthetic_vectors`). This compares, at sizes that can be embedded for
real, pgvector's HNSW recall@10 (against the exact top 10, computed in numpy) on

* `real`: N real embeddings (manual page paragraphs, bench/real_passages.py), queries a sentence of
  one of them, embedded at query time;
* each generator (`--generators`): as bench/retrieval.py builds its data set, R real embeddings
  and N − R synthetic ones made from them, queries a sentence of one of the R; R = N / `--ratio`,
  the ratio of synthetic to real vectors of the million-chunk run (1,000,000 / 20,000 = 50).

Same index (`--m`, `--ef-construction`), same `hnsw.ef_search` values, same number of queries. A
generator is no easier than real data when its recall is at most the real set's at every size and
`ef_search`. Writes bench/results/retrieval-generator.json.
"""

import argparse
import json
import os
import random
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")

from real_passages import man_passages  # noqa: E402
from retrieval import cached_embeddings, query_from, synthetic_vectors  # noqa: E402

from bench.common import results_file  # noqa: E402

DATABASE = "bench_retrieval_generator"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000,20000")
    parser.add_argument("--generators", default="blend,mixture")
    parser.add_argument("--ratio", type=float, default=50.0, help="synthetic vectors per real one")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", default="10,20,40,80,160")
    args = parser.parse_args()

    import django
    import numpy as np

    django.setup()
    import psycopg
    from django.conf import settings
    from pgvector.psycopg import register_vector

    from knowledge.conf import configured_embedder

    sizes = [int(value) for value in args.sizes.split(",")]
    ef_values = [int(value) for value in args.ef_search.split(",")]
    embedder = configured_embedder()
    passages = man_passages(max(sizes))
    real = cached_embeddings(embedder, passages, "man")
    params = settings.DATABASES["default"]
    server = {"host": params["HOST"], "user": params["USER"], "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**server) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    report = {
        "benchmark": "retrieval-generator",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_avg_at_start": os.getloadavg(),
        "index": {"m": args.m, "ef_construction": args.ef_construction},
        "ratio": args.ratio,
        "queries": args.queries,
        "results": [],
    }
    try:
        with psycopg.connect(**(server | {"dbname": DATABASE})) as conn:
            conn.execute("CREATE EXTENSION vector")
            register_vector(conn)
            conn.execute("SET maintenance_work_mem = '1GB'")
            for size in sizes:
                for generator in ["real", *args.generators.split(",")]:
                    rng = random.Random(size)
                    if generator == "real":
                        vectors, sources = real[:size], size
                    else:
                        sources = max(1, round(size / (1 + args.ratio)))
                        vectors = np.concatenate([real[:sources], synthetic_vectors(
                            real[:sources], size - sources, generator, np.random.default_rng(42))])  # fmt: skip
                    rows = [rng.randrange(sources) for _ in range(args.queries)]
                    queries = embedder.embed([query_from(passages[row], rng) for row in rows])
                    result = measure(conn, vectors, queries, args, ef_values)
                    result |= {"vectors": generator, "size": size, "real_vectors": sources}
                    print(json.dumps(result), flush=True)
                    report["results"].append(result)
    finally:
        with psycopg.connect(**server) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    report["load_avg_at_end"] = os.getloadavg()
    out = results_file("retrieval-generator.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report, ef_values)
    return 0


def measure(conn, vectors, queries, args, ef_values) -> dict:
    """HNSW recall@10 of `queries` over `vectors` at each ef_search, and how near the neighbours crowd."""
    import numpy as np

    conn.execute("DROP TABLE IF EXISTS items")
    conn.execute(f"CREATE TABLE items (id int PRIMARY KEY, v vector({vectors.shape[1]}))")
    with conn.cursor() as cursor, cursor.copy("COPY items (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "vector"])
        for row, vector in enumerate(vectors):
            copy.write_row((row, vector))
    started = time.perf_counter()
    conn.execute(
        f"CREATE INDEX ON items USING hnsw (v vector_cosine_ops) WITH (m = {args.m}, "
        f"ef_construction = {args.ef_construction})"
    )
    build = time.perf_counter() - started
    similarities = queries @ vectors.T
    exact = np.argsort(-similarities, axis=1)[:, :10]
    top = np.sort(similarities, axis=1)[:, ::-1]
    recall = {}
    for ef in ef_values:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        found = 0
        for query, truth in zip(queries, exact, strict=True):
            ids = [row[0] for row in conn.execute("SELECT id FROM items ORDER BY v <=> %s LIMIT 10", [query])]
            found += len(set(ids) & set(truth.tolist()))
        recall[str(ef)] = round(found / (10 * len(queries)), 4)
    return {
        "recall_at_10": recall,
        "build_seconds": round(build, 1),
        # How crowded a query's neighbourhood is: the gap between the 10th and the 100th neighbour
        # (a small gap: many near-ties for the last places of the top 10).
        "similarity_10th": round(float(np.median(top[:, 9])), 4),
        "gap_10th_to_100th": round(float(np.median(top[:, 9] - top[:, 99])), 4),
    }


def print_table(report, ef_values) -> None:
    print(f"\n{'size':>7s} {'vectors':10s} {'real':>6s} " + " ".join(f"ef={ef:<5d}" for ef in ef_values)
          + "  sim@10  gap10-100")  # fmt: skip
    for result in report["results"]:
        recalls = " ".join(f"{result['recall_at_10'][str(ef)]:<8.4f}" for ef in ef_values)
        print(f"{result['size']:>7d} {result['vectors']:10s} {result['real_vectors']:>6d} {recalls}"
              f" {result['similarity_10th']:7.4f} {result['gap_10th_to_100th']:9.4f}")  # fmt: skip


if __name__ == "__main__":
    assert re.fullmatch(r"\w+", DATABASE)
    sys.exit(main())
