"""A dependency that is down: Redis → rate limits fail open (signed requests 503); PostgreSQL → a quick 503.

Real servers throughout: a Redis URL where nothing listens, a PostgreSQL URL
where nothing listens or where a socket accepts and never answers, and the
app under uvicorn with its connection pool, as in production.
"""

import json
import socket
import threading

import httpx
import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from accounts.keys import generate_api_key
from accounts.services import api_key_create
from bothero.redis_client import get_redis
from bothero.testing.helpers import signed_headers, unique_client_address
from bothero.testing.processes import free_port, uvicorn_server


@pytest.fixture
def redis_down(settings):
    """Point the rate limiter and the cache (nonces) at a Redis address where nothing listens."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    get_redis.cache_clear()
    yield
    get_redis.cache_clear()
    caches["default"].close()


@pytest.mark.django_db
def test_api_calls_go_through_with_rate_limit_headers_while_redis_is_down(alice, redis_down, caplog):
    first = alice.client.get("/v1/bots")
    second = alice.client.post("/v1/bots", {"name": "Made during the outage"}, format="json")
    assert (first.status_code, second.status_code) == (200, 201), second.content
    # Counted per process meanwhile: the second call sees the first.
    assert int(first["X-RateLimit-Remaining"]) - int(second["X-RateLimit-Remaining"]) == 1
    assert "rate limits are counted per process" in caplog.text


@pytest.mark.django_db
def test_the_per_process_count_still_refuses_a_client_over_its_limit_while_redis_is_down(redis_down):
    from bothero.testing.factories import PlanFactory
    from conftest import make_actor

    actor = make_actor(plan_obj=PlanFactory(requests_per_minute=2))
    statuses = [actor.client.get("/v1/bots").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_a_failed_sign_in_is_a_401_not_a_500_while_redis_is_down(alice, redis_down):
    client = APIClient(REMOTE_ADDR=unique_client_address())
    response = client.post(
        "/v1/auth/token", {"grant_type": "password", "email": alice.user.email, "password": "wrong"}, format="json"
    )
    assert response.status_code == 401, response.content


@pytest.mark.django_db
def test_a_signed_request_is_a_503_with_retry_after_while_the_nonce_store_is_down(alice, redis_down):
    created = api_key_create(tenant=alice.tenant, name="signed", require_signature=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.key}")
    body = json.dumps({"name": "Signed"}).encode()
    headers = signed_headers(created.signing_secret, method="POST", path="/v1/bots", body=body)
    response = client.post("/v1/bots", body, content_type="application/json", headers=headers)
    assert response.status_code == 503, response.content
    assert response.json()["error"]["type"] == "api_error"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
    assert not alice.tenant.bots.filter(name="Signed").exists()


@pytest.fixture
def silent_database():
    """A TCP port that accepts connections and never says a word (a hung or half-up database host)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"postgres://postgres@127.0.0.1:{listener.getsockname()[1]}/bothero"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def assert_database_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "service_unavailable")
    assert error["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.slow
@pytest.mark.parametrize("database", ["refused", "silent"])
def test_the_api_answers_503_within_seconds_while_the_database_is_down(database, silent_database):
    # Before: the pool waited 10 s for a connection, then the request was a 500.
    url = silent_database if database == "silent" else f"postgres://postgres@127.0.0.1:{free_port()}/bothero"
    with uvicorn_server(DATABASE_URL=url) as base_url:
        headers = {"Authorization": f"Bearer {generate_api_key()}"}  # well formed: it needs a lookup
        with httpx.Client(base_url=base_url, timeout=6) as client:
            assert_database_unavailable(client.get("/v1/bots", headers=headers))
            assert_database_unavailable(client.post("/v1/bots", json={"name": "x"}, headers=headers))
            # Outside DRF (the admin reads the session from the database): the same 503.
            assert_database_unavailable(client.get("/admin/", headers={"Cookie": "sessionid=" + "x" * 32}))
            assert client.get("/healthz").status_code == 200
