"""Every benchmark under bench/ that can run small runs here, end to end, as a developer would start it.

Nothing here times anything: the figures are the benchmarks' business (docs/performance.md). What this
catches is a benchmark that no longer runs, or runs and measures nothing — `bench/analytics.py` broke when
conversations gained NOT NULL columns, and `bench/source_sync.py` timed fetching alone (0 chunks embedded)
wherever REDIS_URL was set, both unnoticed until someone ran them by hand.

Each benchmark uses its own database on the embedded PostgreSQL server (never the test database), another
Redis database than the tests', and writes its JSON into a temporary folder (`BENCH_RESULTS_DIR`).
"""

import json
import os
import re
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

BASE = settings.BASE_DIR
BENCH_REDIS_DB = 15

# (script and its small arguments, a pattern its output must hold, the JSON it writes or None, needs Redis)
BENCHMARKS = [
    (
        ["bench/analytics.py", "--messages", "2000", "--requests", "5", "--fresh"],
        "overview p50",
        "analytics.json",
        False,
    ),
    (["bench/webhooks.py", "--events", "20", "--seconds", "1", "--rate", "20"], "duplicates: 0", None, True),
    (["bench/source_sync.py", "--pages", "20"], r"exactly the changed pages' chunks", "source_sync.json", False),
    (["bench/backfill.py", "--chunks", "40"], "got the second vector", None, False),
    (["bench/foundation.py", "--requests", "20", "--concurrency", "2"], "req/s", None, False),
    (["bench/ingest.py", "--chunks", "20", "--repeats", "1"], "ratio ingestion / bare loop", "ingest.json", False),
    (["bench/chat.py", "--requests", "10"], "added plain p50", "chat.json", False),
    (
        ["bench/load.py", "--duration", "3", "--warmup", "1", "--clients", "3"],
        r"uploads ingested: ([1-9]\d*)/\1\b",
        "load.json",
        True,
    ),
]


def bench_env(results_dir) -> dict[str, str]:
    env = dict(os.environ)
    # A benchmark uses DATABASE_URL as is when it is set: here it must make its own database instead.
    env.pop("DATABASE_URL", None)
    env.update(BENCH_RESULTS_DIR=str(results_dir), PYTHONUNBUFFERED="1")
    if env.get("REDIS_URL"):
        # Its Celery messages and rate-limit counters stay out of the tests' Redis database.
        env["REDIS_URL"] = urlunsplit(urlsplit(env["REDIS_URL"])._replace(path=f"/{BENCH_REDIS_DB}"))
        env.pop("CELERY_BROKER_URL", None)
    return env


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("command", "expected", "result", "needs_redis"),
    BENCHMARKS,
    ids=[benchmark[0][0].removeprefix("bench/") for benchmark in BENCHMARKS],
)
def test_the_benchmark_runs_small_and_reports(tmp_path, command, expected, result, needs_redis):
    if needs_redis and not os.environ.get("REDIS_URL"):
        pytest.skip("this benchmark needs a Redis server (REDIS_URL): its Celery workers' broker")
    done = subprocess.run(
        [sys.executable, *command],
        cwd=BASE,
        env=bench_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=840,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert re.search(expected, output), output[-4000:]
    if result:
        assert json.loads((tmp_path / result).read_text()), f"{result} is empty"
