"""Real processes for tests: uvicorn serving the app and Celery workers, on the test database.

Tests that use them must use `transactional_db` (the processes only see committed rows).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import quote

import httpx
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """A DATABASE_URL for the database this test process is using (the test database)."""
    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else db["HOST"]
    port = f":{db['PORT']}" if db.get("PORT") else ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        DJANGO_SETTINGS_MODULE="bothero.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class ServerURL(str):
    """A server's base URL (a plain string) that also knows the server's process id."""

    pid: int


@contextmanager
def uvicorn_server(*, log_level: str = "warning", output: IO | None = None, **env_overrides: str):
    """Serve the ASGI app with uvicorn on a free loopback port; yields the base URL (with `.pid`).

    `output`, a file, gets the server's log (stdout and stderr) instead of this process's stderr.
    """
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "uvicorn"),
            "bothero.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            log_level,
        ],
        cwd=BASE_DIR,
        env=process_env(**env_overrides),
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    base_url = ServerURL(f"http://127.0.0.1:{port}")
    base_url.pid = proc.pid
    try:
        # It loads the embedding model before it listens (bothero.lifespan): seconds on a busy machine.
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {proc.returncode}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start in 60 s")
            time.sleep(0.1)
        yield base_url
    finally:
        _stop(proc)


@contextmanager
def celery_worker(*, queues: str = "celery", concurrency: int = 1, pool: str = "prefork", **env_overrides: str):
    """Run a real Celery worker on the broker in REDIS_URL against the test database; yields the Popen."""
    if not os.environ.get("REDIS_URL") and "REDIS_URL" not in env_overrides:
        raise RuntimeError("A real Celery worker needs REDIS_URL")
    log_path = BASE_DIR / "var" / f"celery-test-{os.getpid()}-{free_port()}.log"
    log_path.parent.mkdir(exist_ok=True)
    log = open(log_path, "w+")
    proc = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "bothero",
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-P",
            pool,
            "-l",
            "info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=process_env(CELERY_TASK_ALWAYS_EAGER="false", **env_overrides),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text():
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker not ready in 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        proc.log_path = log_path
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()
        log_path.unlink(missing_ok=True)
