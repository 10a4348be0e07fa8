"""What the benchmarks share (bench/chat.py, widget.py, analytics.py, webhooks.py, load.py): a database of
their own, the loopback model stub and uvicorn in their own processes, and percentiles."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def results_file(name: str) -> Path:
    """Where a benchmark writes its JSON: bench/results/, or `BENCH_RESULTS_DIR` (the test that runs each
    benchmark small sets it, so a check run leaves a developer's measured results alone)."""
    folder = Path(os.environ.get("BENCH_RESULTS_DIR") or BASE_DIR / "bench" / "results")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def bench_database_url(name: str, *, fresh: bool = False) -> str:
    """DATABASE_URL when it is set; otherwise database `name` on the embedded PostgreSQL server, made on the
    first run and reused by later ones (the development database is not touched); `fresh`: dropped and made
    again, so the run migrates from scratch."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    import psycopg

    from bothero.embedded_postgres import embedded_database_settings

    db = embedded_database_settings(BASE_DIR / "var" / "pgdata")
    with psycopg.connect(host=db["HOST"], user=db["USER"], dbname="postgres", autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if fresh or not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://{db['USER']}@{quote(db['HOST'], safe='')}/{name}"


def start_stub(*options: str) -> tuple[subprocess.Popen, str]:
    """The OpenAI-compatible stub (`conversations.testing.llm_server`, its options) in its own process, and the
    base URL it prints once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "conversations.testing.llm_server", *options],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, proc.stdout.readline().strip()


def start_web(database_url: str, llm_base_url: str, *, workers: int = 1, **env: str) -> tuple[subprocess.Popen, str]:
    """uvicorn serving the app (DEBUG off, `LLM_PROVIDER=openai` pointing at `llm_base_url`, `env` on top) on a
    free loopback port; returns once /healthz answers."""
    import httpx

    from bothero.testing.processes import free_port

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="bothero.settings",
        DEBUG="false",
        SECRET_KEY="bench-secret-key-not-for-production-use-0123456789",
        LLM_PROVIDER="openai",
        LLM_BASE_URL=llm_base_url,
        LLM_API_KEY="sk-bench",
        LLM_MAX_RETRIES="0",
        **env,
    )
    proc = subprocess.Popen(
        [str(BIN / "uvicorn"), "bothero.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        cwd=BASE_DIR,
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (`fraction` 0–1); 0.0 for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else 0.0


def summary(values: list[float]) -> dict:
    """Count, p50, p90, p99 and maximum of `values` (in the unit they are given in)."""
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p90": percentile(values, 0.9),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


class BenchChunk:
    """What ingestion's last step reads of a chunk (knowledge.services.ingestion's chunker output)."""

    heading = ""
    page = None

    def __init__(self, position: int, text: str):
        self.position = position
        self.text = text
        self.token_count = len(text.split())


ENSEMBLE_MODEL = "all-MiniLM-L6-v2-int8+bge-small-en-int8"


def timed_document_write(tenant, bot, texts, vectors, *, title: str):
    """Write a document of `texts` (one chunk each, `vectors` as both models' vectors) as ingestion's last
    step does (`_document_finish`: one transaction, chunks + statistics + status); returns the document
    and the seconds that step took. The benchmarks of writes at scale (retrieval.py, own_index_writes.py)
    time exactly this."""
    from bothero.ids import new_public_id
    from knowledge.models import Document
    from knowledge.services.ingestion import _document_finish

    claim = new_public_id("bench")
    document = Document.objects.create(
        tenant=tenant, bot=bot, title=title, source_type="text", content_type="text/plain",
        status="processing", claim_token=claim,
    )  # fmt: skip
    chunks = [BenchChunk(position, text) for position, text in enumerate(texts)]
    started = time.perf_counter()
    _document_finish(
        document_id=document.pk, claim_token=claim, chunks=chunks, vectors=vectors, aux_vectors=vectors,
        embedding_model=ENSEMBLE_MODEL, embedding_dimension=vectors.shape[1],
    )  # fmt: skip
    return document, time.perf_counter() - started
