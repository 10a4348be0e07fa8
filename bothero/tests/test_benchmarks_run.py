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
import shutil
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

BASE = settings.BASE_DIR
BENCH_REDIS_DB = 15

# (script and its small arguments, a pattern its output must hold, the JSON it writes or None, what it needs)
BENCHMARKS = [
    (
        ["bench/analytics.py", "--messages", "2000", "--requests", "5", "--fresh"],
        "overview p50",
        "analytics.json",
        None,
    ),
    (["bench/webhooks.py", "--events", "20", "--seconds", "1", "--rate", "20"], "duplicates: 0", None, "redis"),
    (["bench/source_sync.py", "--pages", "20"], r"exactly the changed pages' chunks", "source_sync.json", None),
    (["bench/backfill.py", "--chunks", "40"], "got the second vector", None, None),
    (["bench/foundation.py", "--requests", "20", "--concurrency", "2"], "req/s", None, None),
    (["bench/ingest.py", "--chunks", "20", "--repeats", "1"], "ratio ingestion / bare loop", "ingest.json", None),
    (["bench/chat.py", "--requests", "10"], "added plain p50", "chat.json", None),
    (
        ["bench/load.py", "--duration", "3", "--warmup", "1", "--clients", "3"],
        r"uploads ingested: ([1-9]\d*)/\1\b",
        "load.json",
        "redis",
    ),
    (
        ["bench/retrieval.py", "--chunks", "3000", "--real", "100", "--queries", "10", "--rounds", "1"],
        r"recall@10 exact SQL scan vs numpy\s+1\.0000",
        "retrieval-3000-single-mixture-vector-m16-ef64.json",
        None,
    ),
    (
        ["bench/retrieval_generator.py", "--sizes", "300", "--queries", "10"],
        r"300 mixture",
        "retrieval-generator.json",
        None,
    ),
    (["bench/widget.py", "--runs", "2"], "browser console errors: 0", "widget.json", "chromium"),
]


def missing(needs: str | None) -> str | None:
    """Why a benchmark cannot run on this machine, or None."""
    if needs == "redis" and not os.environ.get("REDIS_URL"):
        return "this benchmark needs a Redis server (REDIS_URL): its Celery workers' broker"
    if needs == "chromium" and not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "this benchmark needs chromium and chromium-driver (.ci/run installs them)"
    return None


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
    ("command", "expected", "result", "needs"),
    BENCHMARKS,
    ids=[benchmark[0][0].removeprefix("bench/") for benchmark in BENCHMARKS],
)
def test_the_benchmark_runs_small_and_reports(tmp_path, command, expected, result, needs):
    if reason := missing(needs):
        pytest.skip(reason)
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


# bench/quality.py's held-out figures for the pipeline (docs/quality.md), each lowered by about one question:
# the run is deterministic (two runs days apart gave the same figures to the third decimal), so a change that
# makes retrieval or answers worse fails here, not only when someone re-runs the benchmark by hand. Raise a
# floor when a change lifts its figure.
QUALITY_FLOORS = {
    ("verbatim", "recall@5"): 0.97,
    ("reworded", "recall@1"): 0.59,
    ("reworded", "recall@5"): 0.86,
    ("reworded", "mrr@10"): 0.69,
    ("answer_correct",): 0.51,
    ("refusals_on_unanswerable",): 0.73,
    ("follow_up_accuracy",): 0.72,
}
QUALITY_CEILINGS = {("false_refusals",): 0.08}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_answer_quality_holds_its_documented_figures(tmp_path):
    out = tmp_path / "quality.json"
    done = subprocess.run(
        [sys.executable, "bench/quality.py", "--modes", "pipeline", "--out", str(out)],
        cwd=BASE,
        env=bench_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    held_out = json.loads(out.read_text())["modes"]["pipeline"]["held-out"]

    def figure(path):
        value = held_out
        for key in path:
            value = value[key]
        return value

    worse = {path: figure(path) for path, floor in QUALITY_FLOORS.items() if figure(path) < floor}
    worse |= {path: figure(path) for path, ceiling in QUALITY_CEILINGS.items() if figure(path) > ceiling}
    assert not worse, f"answer quality fell: {worse}; held-out figures: {held_out}"
