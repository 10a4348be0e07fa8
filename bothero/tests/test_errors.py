"""The error envelope on every kind of error, with X-Request-Id, through the public API.

The 500 cases use views defined in this module: the test URLconf (`urlpatterns`
below) is swapped in with `pytest.mark.urls`, so no test-only route exists in
the real URLconf.
"""

import json

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path
from rest_framework.test import APIClient

from bothero import urls as real_urls
from bothero.api.views import TenantAPIView
from bothero.testing.factories import PlanFactory
from bothero.testing.helpers import wait_for_window_room
from conftest import make_actor

pytestmark = pytest.mark.django_db

ERROR_TYPES = {"invalid_request_error", "authentication_error", "permission_error", "rate_limit_error", "api_error"}


def assert_envelope(response, status: int, code: str, error_type: str, param=None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "code", "message", "param", "request_id"}
    assert error["type"] == error_type
    assert error["type"] in ERROR_TYPES
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"]
    assert error["request_id"].startswith("req_")
    assert response["X-Request-Id"] == error["request_id"]
    return error


# --- views for the 500 tests -----------------------------------------------------------


class ExplodingApiView(TenantAPIView):
    def get(self, request):
        raise RuntimeError("boom in an API view")


def exploding_django_view(request):
    raise RuntimeError("boom in a plain Django view")


def fine_view(request):
    return HttpResponse("ok")


urlpatterns = [
    path("v1/explode", ExplodingApiView.as_view()),
    path("plain/explode", exploding_django_view),
    path("plain/fine", fine_view),
]
handler404 = real_urls.handler404
handler500 = real_urls.handler500


# --- 4xx --------------------------------------------------------------------------------------


def test_a_validation_error_names_the_parameter(alice):
    response = alice.client.post("/v1/bots", {"description": "no name"}, format="json")
    error = assert_envelope(response, 400, "missing_param", "invalid_request_error", param="name")
    assert "name" in error["message"]


def test_a_nested_validation_error_names_the_nested_parameter(alice):
    response = alice.client.post("/v1/bots", {"name": "x", "retrieval": {"top_k": 0}}, format="json")
    assert_envelope(response, 400, "invalid_min_value", "invalid_request_error", param="retrieval.top_k")


def test_an_unknown_parameter_is_refused_by_name(alice):
    response = alice.client.post("/v1/bots", {"name": "x", "temprature": 0.5}, format="json")
    assert_envelope(response, 400, "unknown_parameter", "invalid_request_error", param="temprature")


def test_malformed_json_is_a_400(alice):
    response = alice.client.post("/v1/bots", b'{"name": ', content_type="application/json")
    assert_envelope(response, 400, "invalid_json", "invalid_request_error")


def test_a_missing_credential_is_a_401_with_www_authenticate(anonymous_client):
    response = anonymous_client.get("/v1/bots")
    assert_envelope(response, 401, "missing_credentials", "authentication_error")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Bearer bh_live_notakey", "invalid_api_key"),
        ("Bearer bhat_notatoken", "invalid_access_token"),
        ("Bearer something-else", "invalid_credentials"),
        ("Basic dXNlcjpwYXNz", "invalid_authorization_header"),
        ("Bearer", "invalid_authorization_header"),
    ],
)
def test_a_bad_credential_is_a_401_with_www_authenticate(anonymous_client, authorization, code):
    response = anonymous_client.get("/v1/bots", HTTP_AUTHORIZATION=authorization)
    assert_envelope(response, 401, code, "authentication_error")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_plan_without_api_access_is_a_403():
    actor = make_actor("starter")
    assert_envelope(actor.client.get("/v1/bots"), 403, "plan_upgrade_required", "permission_error")


def test_another_tenants_object_is_a_404(alice_bot, charlie):
    response = charlie.client.get(f"/v1/bots/{alice_bot.public_id}")
    assert_envelope(response, 404, "bot_not_found", "invalid_request_error", param="id")


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_path_is_a_404_envelope_even_with_debug_on(settings, debug):
    settings.DEBUG = debug
    for url in ("/v1/nothing-here", "/nothing/at/all", "/v1/bots/"):
        response = APIClient().get(url)
        error = assert_envelope(response, 404, "not_found", "invalid_request_error")
        assert url in error["message"]


def test_a_method_the_endpoint_does_not_have_is_a_405(alice):
    response = alice.client.put("/v1/bots", {"name": "x"}, format="json")
    assert_envelope(response, 405, "method_not_allowed", "invalid_request_error")
    assert "GET" in response["Allow"]


def test_a_body_over_the_limit_is_a_413_before_it_is_read(alice, settings):
    settings.MAX_JSON_BODY_BYTES = 1000
    response = alice.client.post(
        "/v1/bots", json.dumps({"name": "x", "description": "y" * 1200}), content_type="application/json"
    )
    assert_envelope(response, 413, "request_too_large", "invalid_request_error")
    assert not alice.tenant.bots.exists()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"name=x"),
        ("application/x-www-form-urlencoded", b"name=x"),
        (
            "multipart/form-data; boundary=zzz",
            b'--zzz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--zzz--\r\n',
        ),
    ],
)
def test_a_body_that_is_not_json_is_a_415(alice, content_type, body):
    response = alice.client.post("/v1/bots", body, content_type=content_type)
    assert_envelope(response, 415, "unsupported_media_type", "invalid_request_error")
    assert not alice.tenant.bots.exists()


def test_a_reused_idempotency_key_with_another_body_is_a_422(alice):
    first = alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k-422")
    assert first.status_code == 201
    response = alice.client.post("/v1/bots", {"name": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="k-422")
    assert_envelope(response, 422, "idempotency_key_reused", "invalid_request_error")


def test_the_request_after_the_limit_is_a_429_with_retry_after():
    actor = make_actor(plan_obj=PlanFactory(requests_per_minute=2))
    wait_for_window_room(10)
    assert actor.client.get("/v1/bots").status_code == 200
    assert actor.client.get("/v1/bots").status_code == 200
    response = actor.client.get("/v1/bots")
    assert_envelope(response, 429, "rate_limit_exceeded", "rate_limit_error")
    assert 1 <= int(response["Retry-After"]) <= 60


# --- 5xx --------------------------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_an_unexpected_exception_in_an_api_view_is_a_500_envelope(alice, caplog):
    response = alice.client.get("/v1/explode")
    error = assert_envelope(response, 500, "internal_error", "api_error")
    assert "boom" not in error["message"]  # no internals in the answer
    assert "boom in an API view" in caplog.text  # but logged for us
    assert response["X-RateLimit-Limit"]


@pytest.mark.urls(__name__)
def test_an_unexpected_exception_outside_drf_is_a_500_envelope(db):
    client = Client(raise_request_exception=False)
    assert client.get("/plain/fine").status_code == 200
    response = client.get("/plain/explode")
    assert_envelope(response, 500, "internal_error", "api_error")


@pytest.mark.urls(__name__)
def test_an_unknown_path_under_a_urlconf_without_a_catch_all_uses_handler404(db):
    assert_envelope(Client().get("/not-here"), 404, "not_found", "invalid_request_error")


def test_the_real_urlconf_routes_django_errors_to_the_envelope():
    assert real_urls.handler404 == "bothero.api.errors.handler404"
    assert real_urls.handler500 == "bothero.api.errors.handler500"


# --- every response has a request id -------------------------------------------------------------


def test_every_response_has_a_distinct_request_id(alice, alice_bot):
    ids = set()
    for response in (
        alice.client.get("/v1/bots"),
        alice.client.get(f"/v1/bots/{alice_bot.public_id}"),
        APIClient().get("/healthz"),
        APIClient().get("/v1/openapi.json"),
        APIClient().get("/nope"),
    ):
        assert response["X-Request-Id"].startswith("req_")
        ids.add(response["X-Request-Id"])
    assert len(ids) == 5


# --- body limits at the ASGI server ---------------------------------------------------------------


@pytest.mark.slow
def test_the_server_refuses_an_oversized_body_before_receiving_it(transactional_db):
    import socket

    import httpx

    from bothero.testing.processes import uvicorn_server

    actor = make_actor()
    auth = {"Authorization": f"Bearer {actor.key}", "Content-Type": "application/json"}
    with uvicorn_server() as base:
        port = int(base.rsplit(":", 1)[1])
        # A declared 100 MB body, none of it sent: the answer comes at once, so nothing waited for the body.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(
                b"POST /v1/bots HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 104857600\r\n\r\n"
            )
            raw = b""
            while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}}"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head
        error = json.loads(body)["error"]
        assert (error["code"], error["type"]) == ("request_too_large", "invalid_request_error")
        assert f"x-request-id: {error['request_id']}".encode() in head

        def chunks(total: int):
            for _ in range(total // 65536):
                yield b" " * 65536

        # Sent without a length (chunked): refused once it passes the 1 MB JSON limit.
        response = httpx.post(f"{base}/v1/bots", content=chunks(3 * 1024 * 1024), headers=auth, timeout=10)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"

        # A small chunked body still reaches the API.
        def small():
            yield b'{"name": '
            yield b'"Chunked"}'

        response = httpx.post(f"{base}/v1/bots", content=small(), headers=auth, timeout=10)
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "Chunked"
