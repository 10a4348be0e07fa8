"""The development server behind `make run`: check the port, migrate, the demo data, uvicorn, and stop cleanly.

The port is checked first, so a busy port stops the command before anything
else happens (the demo key is left alone). uvicorn runs as a child process
(the ASGI app sets up Django itself, with pooled connections) with the lifespan
protocol off, which Django does not speak. When it stops (Ctrl-C), the embedded
PostgreSQL stops too if this command started it. SIGTERM (`kill`, a process
manager) does the same: uvicorn is told to stop, then the database.
"""

import errno
import signal
import socket
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from bothero import embedded_postgres


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on (host, port): binding it as uvicorn would fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn does, so that a port in TIME_WAIT after a restart still counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


class Terminated(Exception):
    """SIGTERM reached this command: stop as Ctrl-C does (without it the command would die at once, leaving its
    uvicorn running and its database up)."""


def _raise_terminated(signum, frame):
    raise Terminated


class Command(BaseCommand):
    help = "Serve for development: migrate, the demo tenant/key/bot, uvicorn on --host/--port."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo tenant, key and bot.")

    def handle(self, *args, host, port, no_demo, **options):
        previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            if port_in_use(host, port):
                raise CommandError(
                    f"Port {port} on {host} is already in use (another `make run`?). Stop that server, or serve on "
                    f"another port: PORT={port + 1} make run"
                )
            call_command("migrate", interactive=False, verbosity=0)
            if not no_demo:
                call_command("demo", base_url=f"http://{host}:{port}")
            self.stdout.write(
                f"Serving on http://{host}:{port} (API reference: http://{host}:{port}/docs). Ctrl-C stops."
            )
            self.serve(host, port)
        except Terminated:
            self.stdout.write("Stopped (SIGTERM).")
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
            self.stop_database()

    def serve(self, host: str, port: int) -> None:
        command = [sys.executable, "-m", "uvicorn", "bothero.asgi:application", "--host", host, "--port", str(port)]
        server = subprocess.Popen([*command, "--lifespan", "off"])
        try:
            server.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached uvicorn too (same process group): let it finish its requests and stop.
            server.wait()
        except Terminated:
            # A SIGTERM was sent to this process alone: pass it on, then let uvicorn finish as above.
            server.terminate()
            server.wait()
            raise
        if server.returncode not in (0, -2, 130):
            raise CommandError(f"uvicorn stopped with exit status {server.returncode}.")

    def stop_database(self) -> None:
        if embedded_postgres.started_here:
            connections.close_all()
            pgdata = settings.VAR_DIR / "pgdata"
            if embedded_postgres.embedded_server_stop(pgdata):
                self.stdout.write("Stopped the embedded PostgreSQL.")
