"""The OpenAPI document validates and describes real responses; Swagger UI works offline."""

import re

import httpx
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from bothero.testing.processes import uvicorn_server


@pytest.fixture(scope="module")
def schema():
    response = APIClient().get("/v1/openapi.json")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_document_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.read_text().startswith("openapi: 3")


def test_it_is_served_as_json_without_authentication(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "BotHero API"
    assert "/v1/bots" in schema["paths"]


def test_every_operation_documents_the_error_envelope_and_request_id(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code in ("400", "401", "403", "429", "500"):
                assert code in responses, (method, path, code)
                content = responses[code]["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            for code, response in responses.items():
                assert "X-Request-Id" in response["headers"], (method, path, code)
            assert "Retry-After" in responses["429"]["headers"]


def test_authenticated_operations_document_bearer_auth_and_rate_limit_headers(schema):
    operation = schema["paths"]["/v1/bots"]["get"]
    assert operation["security"] == [{"bearer": []}]
    assert set(operation["responses"]["200"]["headers"]) >= {
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_token_endpoints_are_public_and_have_no_idempotency_header(schema):
    for path in ("/v1/auth/token", "/v1/auth/refresh"):
        operation = schema["paths"][path]["post"]
        assert not operation.get("security"), path
        assert not any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
        assert "X-RateLimit-Limit" not in operation["responses"]["200"]["headers"]


def test_posts_document_idempotency_and_bodies_document_413_and_415(schema):
    operation = schema["paths"]["/v1/bots"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation["parameters"])
    assert {"409", "413", "415", "422"} <= set(operation["responses"])
    assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
    assert "404" in schema["paths"]["/v1/bots/{id}"]["get"]["responses"]
    assert "requestBody" in schema["paths"]["/v1/auth/revoke"]["delete"]


def test_the_documented_error_schema_matches_a_real_error(schema, anonymous_client):
    error_schema = schema["components"]["schemas"]["Error"]["properties"]["error"]
    real = anonymous_client.get("/v1/bots").json()["error"]
    assert set(real) == set(error_schema["required"]) == set(error_schema["properties"])
    assert real["type"] in error_schema["properties"]["type"]["enum"]


def test_the_documented_list_shape_matches_a_real_list(schema, alice):
    paginated = schema["components"]["schemas"]["PaginatedBotList"]
    assert set(paginated["properties"]) == set(alice.client.get("/v1/bots").json())


def test_swagger_ui_page_refers_to_the_bundled_assets(db):
    response = APIClient().get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "/v1/openapi.json" in html
    assert "cdn" not in html.lower()


@pytest.mark.slow
def test_the_asgi_server_serves_docs_and_their_assets_offline(transactional_db):
    with uvicorn_server() as base:
        page = httpx.get(f"{base}/docs", timeout=10)
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
        for asset in assets:
            response = httpx.get(f"{base}{asset}", timeout=10)
            assert response.status_code == 200, asset
            assert len(response.content) > 100
            assert response.headers["X-Request-Id"].startswith("req_")
        bundle = httpx.get(f"{base}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", timeout=10)
        assert "javascript" in bundle.headers["Content-Type"]
        assert httpx.get(f"{base}/static/admin/css/base.css", timeout=10).status_code == 200
        assert httpx.get(f"{base}/static/nope.js", timeout=10).status_code == 404
        assert httpx.get(f"{base}/v1/openapi.json", timeout=10).json()["openapi"].startswith("3.")


def test_the_document_is_served_compact_unless_asked_for_indentation():
    compact = APIClient().get("/v1/openapi.json")
    indented = APIClient().get("/v1/openapi.json", HTTP_ACCEPT="application/json; indent=2")
    assert compact.status_code == indented.status_code == 200
    assert b"\n" not in compact.content
    assert b'\n  "' in indented.content
    assert compact.json() == indented.json()
    assert len(compact.content) < len(indented.content) * 0.8


def test_docs_with_a_trailing_slash_redirects_to_the_reference():
    response = APIClient().get("/docs/")
    assert response.status_code == 301
    assert response["Location"] == "/docs"
