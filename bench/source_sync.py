"""Website source sync benchmark: `python bench/source_sync.py [--pages 2000] [--changed 0.01]`.

Serves a site of `--pages` HTML pages (a few paragraphs of real prose each,
listed by a sitemap index over gzipped sitemaps) on loopback, then runs the
product's sync (`knowledge.services.website_source_sync`, ingestion inline as
an eager worker would) three times on one source:

1. the first sync: every page discovered, fetched, parsed, chunked, embedded
   and indexed — the baseline: what a sync costs when every page is work;
2. a re-sync with nothing changed: every page answers 304 to its conditional request;
3. a re-sync with `--changed` of the pages changed (1 % by default): only those
   may be parsed and embedded again.

For each it prints the time, pages per second, and the chunks embedded (new
chunk rows), and checks that the re-syncs re-embedded exactly the changed
pages' chunks. Uses a throw-away database (`bench_source_sync`); writes
bench/results/source_sync.json. Run it alone on the machine
(`flock /tmp/bench.lock nice -n 5 .venv/bin/python bench/source_sync.py`).
"""

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
os.environ["BOTHERO_TEST_DB_NAME"] = "bench_source_sync"
# Ingestion runs inline (as an eager worker would) even where REDIS_URL is set: with a broker and no worker,
# every page's document would wait in the queue and the runs would time fetching alone.
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
PAGES_PER_SITEMAP = 500


def page_html(number: int, sentences: list[str], rng: random.Random, version: int = 0) -> str:
    paragraphs = []
    for _ in range(3):
        start = rng.randrange(len(sentences) - 8)
        paragraphs.append("<p>" + " ".join(sentences[start : start + rng.randint(4, 7)]) + "</p>")
    note = f"<p>Revision {version}: updated notes for page {number}.</p>" if version else ""
    return (
        f"<html><head><title>Help page {number}</title></head><body><h1>Help page {number}</h1>"
        + "".join(paragraphs)
        + note
        + "</body></html>"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages on the site (use e.g. 200 for a quick run)")
    parser.add_argument("--changed", type=float, default=0.01, help="share of pages changed before the last re-sync")
    args = parser.parse_args()

    import django

    django.setup()
    from django.test.utils import override_settings, setup_databases, teardown_databases

    from bench.retrieval import prose_sentences

    sentences = prose_sentences()
    rng = random.Random(11)
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=[])
    media = tempfile.mkdtemp(prefix="bench-sources-")
    results = {}
    try:
        with override_settings(
            MEDIA_ROOT=media,
            ALLOW_PRIVATE_URLS=True,
            KNOWLEDGE_INGEST_IN_THREAD=False,
            KNOWLEDGE_SOURCE_MAX_PAGES=max(args.pages, 5000),
        ):
            from bothero.testing.factories import BotFactory, PlanFactory, TenantFactory
            from knowledge.models import Chunk, WebsiteSource
            from knowledge.services import website_source_sync
            from knowledge.testing.site import LocalSite

            tenant = TenantFactory(plan=PlanFactory(max_documents=None, max_storage_mb=None))
            bot = BotFactory(tenant=tenant)
            with LocalSite() as site:
                paths = [f"/help/{number}" for number in range(args.pages)]
                for number, path in enumerate(paths):
                    site.page(path, page_html(number, sentences, rng))
                sitemaps = []
                for first in range(0, len(paths), PAGES_PER_SITEMAP):
                    sitemaps.append(f"/sitemap-{first // PAGES_PER_SITEMAP}.xml.gz")
                    site.sitemap(sitemaps[-1], paths[first : first + PAGES_PER_SITEMAP], gzipped=True)
                site.sitemap_index("/sitemap.xml", sitemaps)
                site.robots("User-agent: *\nAllow: /\n")
                source = WebsiteSource.objects.create(
                    tenant=tenant,
                    bot=bot,
                    type="sitemap",
                    url=site.url("/sitemap.xml"),
                    max_pages=args.pages,
                    refresh="never",
                )

                def run(label: str) -> dict:
                    before = set(Chunk.objects.filter(bot=bot).values_list("id", flat=True))
                    started = time.perf_counter()
                    result = website_source_sync(source_id=source.pk)
                    elapsed = time.perf_counter() - started
                    after = set(Chunk.objects.filter(bot=bot).values_list("id", flat=True))
                    row = {
                        "run": label,
                        "seconds": round(elapsed, 2),
                        "pages_per_second": round(result["discovered"] / elapsed, 1),
                        "chunks_embedded": len(after - before),
                        **{
                            k: result[k] for k in ("discovered", "created", "updated", "unchanged", "removed", "failed")
                        },
                    }
                    print(
                        f"{label:<28} {row['seconds']:>8.2f} s {row['pages_per_second']:>8.1f} pages/s "
                        f"{row['chunks_embedded']:>7} chunks embedded   created {row['created']:>5} "
                        f"updated {row['updated']:>4} unchanged {row['unchanged']:>5} failed {row['failed']}"
                    )
                    return row

                print(f"Site: {args.pages} pages, {len(sitemaps)} gzipped sitemaps behind an index, on loopback")
                print(f"{'':<28} {'time':>10} {'throughput':>14} {'work':>22}")
                first = run("first sync (every page)")
                unchanged = run("re-sync, nothing changed")
                changed_paths = rng.sample(paths, max(1, round(args.pages * args.changed)))
                for path in changed_paths:
                    site.change(path, page_html(int(path.rsplit("/", 1)[1]), sentences, rng, version=1))
                changed_pages_before = {
                    path: set(Chunk.objects.filter(document__metadata__url=site.url(path)).values_list("id", flat=True))
                    for path in changed_paths
                }
                changed = run(f"re-sync, {len(changed_paths)} pages changed")
                expected = sum(
                    Chunk.objects.filter(document__metadata__url=site.url(path)).count() for path in changed_paths
                )
                assert first["created"] == args.pages, first
                assert first["chunks_embedded"] > 0, first
                assert unchanged["chunks_embedded"] == 0, unchanged
                assert unchanged["unchanged"] == args.pages, unchanged
                assert changed["updated"] == len(changed_paths), changed
                assert changed["chunks_embedded"] == expected, (changed, expected)
                assert all(changed_pages_before[path] for path in changed_paths)
                print(
                    f"\nThe re-sync with {len(changed_paths)} changed pages embedded {changed['chunks_embedded']} chunks "
                    f"(exactly the changed pages' chunks) against {first['chunks_embedded']} for the first sync, in "
                    f"{changed['seconds'] / first['seconds']:.1%} of its time."
                )
                results = {
                    "pages": args.pages,
                    "changed_share": args.changed,
                    "runs": [first, unchanged, changed],
                    "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                    "at": datetime.now(UTC).isoformat(),
                }
    finally:
        teardown_databases(old_config, verbosity=0)
    from bench.common import results_file

    results_file("source_sync.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
