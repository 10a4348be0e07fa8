"""Health probes (unauthenticated) and settings that must fail at start."""

import os
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from bothero.redis_client import get_redis
from bothero.testing.processes import BASE_DIR, free_port


@pytest.fixture
def redis_url(settings):
    """Point the app at another Redis URL for one test (the client is cached per process)."""

    def use(url: str):
        settings.REDIS_URL = url
        get_redis.cache_clear()

    yield use
    get_redis.cache_clear()


def test_healthz_answers_without_credentials_or_database():
    response = APIClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_and_redis():
    response = APIClient().get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == ("ok" if os.environ.get("REDIS_URL") else "not configured")


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_unreachable(redis_url):
    redis_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    response = APIClient().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("error")
    assert body["checks"]["database"] == "ok"


def _start_settings(**env) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter with exactly these variables (plus PATH)."""
    environment = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "bothero.settings", **env}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secret_key_is_required_when_debug_is_off():
    result = _start_settings(DEBUG="false", DATABASE_URL="postgres://u@127.0.0.1:1/unused")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_off_with_a_secret_key_starts():
    result = _start_settings(DEBUG="false", SECRET_KEY="s" * 50, DATABASE_URL="postgres://u@127.0.0.1:1/unused")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
