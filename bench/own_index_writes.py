"""Writes into a bot with its own indexes: `python bench/own_index_writes.py [--db NAME] [--rounds 2]`.

Issue #15 item 4 asks that ingestion into a 1M-chunk index keeps within 20 % of the chunks/s of an
empty index. A bot above KNOWLEDGE_BOT_INDEX_MIN_CHUNKS has its own partial HNSW and GIN indexes; its
chunks written once its own graph is valid stay out of the shared graph (`in_shared_index` false), so
each goes into one HNSW graph and two GINs (the result records how many of the document's chunks went
into the shared graph). This writes a 10,000-chunk document as
ingestion's last step does (`_document_finish`: one transaction, chunks + statistics + status), into

1. the largest bot of a kept `bench/retrieval.py --keep` database (default: the 1M long-tail one), which
   has its own indexes, deleting the document after each round;
2. the same bot name in a fresh, empty test database (the migrations' shared indexes only),

`--rounds` times each, interleaved (kept, empty, kept, empty ...) so the machine's load falls on both.
The chunks are the large bot's first 10,000 (text and vector, vector + 0.02 noise): near the loaded ones,
not copies. Results: bench/results/own-index-writes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")

from bench.common import results_file, timed_document_write  # noqa: E402

KEPT = "bench_retrieval_1000000_longtail_mixture_vector_m16_ef64"
CHUNKS = 10_000
DATA = ROOT / "var" / "bench-own-index-writes.npz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=KEPT, help="the kept database (BOTHERO_TEST_DB_NAME)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["kept", "empty"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0
    report: dict = {
        "benchmark": "own-index-writes",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": args.db,
        "chunks_per_write": CHUNKS,
        "load_avg_at_start": os.getloadavg(),
        "rounds": [],
    }
    for _ in range(args.rounds):
        for kind in ("kept", "empty"):
            out = subprocess.run(
                [sys.executable, __file__, "--db", args.db, "--child", kind],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["load_avg"] = os.getloadavg()
            print(kind, result, flush=True)
            report["rounds"].append(result)
    kept = [r["chunks_per_s"] for r in report["rounds"] if r["target"] == "kept"]
    empty = [r["chunks_per_s"] for r in report["rounds"] if r["target"] == "empty"]
    report["kept_chunks_per_s"] = kept
    report["empty_chunks_per_s"] = empty
    report["kept_vs_empty_mean"] = round((sum(kept) / len(kept)) / (sum(empty) / len(empty)), 3)
    report["load_avg_at_end"] = os.getloadavg()
    out = results_file("own-index-writes.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


def child(args) -> dict:
    import numpy as np

    os.environ["BOTHERO_TEST_DB_NAME"] = args.db if args.child == "kept" else "bench_own_index_writes_empty"
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from bothero.testing.factories import BotFactory, TenantFactory
    from bots.models import Bot
    from knowledge import services, sql
    from knowledge.models import Document

    old_config = setup_databases(verbosity=0, interactive=False, keepdb=args.child == "kept", serialized_aliases=[])
    try:
        if args.child == "kept":
            with connection.cursor() as cursor:
                cursor.execute("SELECT bot_id, count(*) FROM knowledge_chunk GROUP BY bot_id ORDER BY 2 DESC LIMIT 1")
                bot_id, bot_chunks = cursor.fetchone()
                if not DATA.exists():
                    cursor.execute(
                        "SELECT text, embedding::text FROM knowledge_chunk WHERE bot_id = %s ORDER BY id LIMIT %s",
                        [bot_id, CHUNKS],
                    )
                    rows = cursor.fetchall()
                    vectors = np.array([json.loads(v) for _, v in rows], dtype=np.float32)
                    np.savez(DATA, texts=np.array([t for t, _ in rows]), vectors=vectors)
                own = {}
                for kind in sql.BOT_INDEX_KINDS:
                    cursor.execute(
                        "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)",
                        [sql.bot_index_name(bot_id, kind)],
                    )
                    row = cursor.fetchone()
                    own[kind] = bool(row and row[0])
                cursor.execute("SELECT count(*) FROM knowledge_chunk")
                total = cursor.fetchone()[0]
            bot = Bot.objects.select_related("tenant").get(pk=bot_id)
            tenant = bot.tenant
        else:
            tenant = TenantFactory()
            bot = BotFactory(tenant=tenant, name="Bench bot 0")
            bot_chunks, total, own = 0, 0, {}
        data = np.load(DATA)
        texts, loaded = list(data["texts"]), data["vectors"]
        noise = np.random.default_rng(CHUNKS).standard_normal(loaded.shape).astype(np.float32)
        vectors = loaded + 0.02 * noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        document, seconds = timed_document_write(tenant, bot, texts, vectors, title="Bench write (own index)")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM knowledge_chunk WHERE document_id = %s AND in_shared_index", [document.pk]
            )
            in_shared_graph = cursor.fetchone()[0]
        deleted = time.perf_counter()
        services.document_delete(document=Document.objects.get(pk=document.pk))
        delete_seconds = time.perf_counter() - deleted
        return {
            "target": args.child,
            "chunks_in_index": total,
            "bot_chunks": bot_chunks,
            "bot_own_indexes_valid": own,
            "chunks": len(texts),
            "chunks_in_shared_graph": in_shared_graph,
            "seconds": round(seconds, 2),
            "chunks_per_s": round(len(texts) / seconds, 1),
            "delete_seconds": round(delete_seconds, 2),
        }
    finally:
        connection.close()
        if args.child == "empty":
            teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
