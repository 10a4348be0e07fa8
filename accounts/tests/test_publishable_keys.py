"""Publishable keys (`pk_live_`): creation, what they may and may not call, origins, visitors, identities, CORS,
abuse limits — all through the public API."""

import hashlib
import hmac
import re

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.origins import InvalidOrigin, allowed_origin_normalise, origin_allowed
from bothero.testing.factories import BotFactory
from bothero.testing.helpers import unique_client_address, wait_for_window_room
from widget.tests.helpers import SITE, browser

from .test_api_keys import database_cells_containing

pytestmark = pytest.mark.django_db

PK_PATTERN = re.compile(r"^pk_live_[0-9A-Za-z]{38}$")


def create_pk(actor, bots, **options) -> dict:
    body = {
        "name": "Website",
        "type": "publishable",
        "bot_ids": [bot.public_id for bot in bots],
        "allowed_origins": [SITE],
        **options,
    }
    response = actor.client.post("/v1/auth/keys", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def error_code(response) -> str:
    return response.json()["error"]["code"]


# --- creation ---------------------------------------------------------------------


def test_a_publishable_key_is_created_for_bots_and_origins_and_shown_once(alice, alice_bot):
    body = create_pk(alice, [alice_bot], allowed_origins=["https://WWW.Acme.example:443/", "https://*.acme.example"])
    assert PK_PATTERN.match(body["key"])
    assert body["type"] == "publishable"
    assert body["prefix"] == body["key"][:12]
    assert body["bot_ids"] == [alice_bot.public_id]
    # Stored as browsers send them: lower case, no default port, no trailing slash.
    assert body["allowed_origins"] == [SITE, "https://*.acme.example"]
    assert body["identity_verification"] == "off"
    assert body["identity_secret"] is None
    assert body["limits"] == {
        "visitor_requests_per_minute": 20,
        "address_requests_per_minute": 60,
        "max_message_chars": 1000,
    }
    row = ApiKey.objects.get(public_id=body["id"])
    assert row.key_hash == hashlib.sha256(body["key"].encode()).hexdigest()
    listed = alice.client.get("/v1/auth/keys").json()["data"]
    assert {item["type"] for item in listed} == {"secret", "publishable"}
    assert all("key" not in item for item in listed)


def test_type_defaults_to_secret_so_existing_calls_are_unchanged(alice):
    body = alice.client.post("/v1/auth/keys", {"name": "server"}, format="json").json()
    assert body["type"] == "secret"
    assert body["key"].startswith("bh_live_")
    assert body["bot_ids"] == []
    assert body["allowed_origins"] == []
    assert body["limits"] is None


@pytest.mark.parametrize(
    ("options", "param", "code"),
    [
        ({"allowed_origins": ["*"]}, "allowed_origins", "invalid_origin"),
        ({"allowed_origins": ["https://*"]}, "allowed_origins", "invalid_origin"),
        ({"allowed_origins": ["https://*.example"]}, "allowed_origins", "invalid_origin"),
        ({"allowed_origins": ["https://acme.example/shop"]}, "allowed_origins", "invalid_origin"),
        ({"allowed_origins": ["ftp://acme.example"]}, "allowed_origins", "invalid_origin"),
        ({"allowed_origins": []}, "allowed_origins", "required"),
        ({"bot_ids": []}, "bot_ids", "required"),
        ({"require_signature": True}, "require_signature", "publishable_key_option"),
        ({"limits": {"visitor_requests_per_minute": 0}}, "limits.visitor_requests_per_minute", "invalid_min_value"),
    ],
)
def test_a_publishable_key_with_bad_options_is_refused(alice, alice_bot, options, param, code):
    body = {"name": "Website", "type": "publishable", "bot_ids": [alice_bot.public_id], "allowed_origins": [SITE]}
    response = alice.client.post("/v1/auth/keys", {**body, **options}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"].startswith(param)
    assert error_code(response) == code
    assert not alice.tenant.api_keys.filter(key_type="publishable").exists()


def test_publishable_options_on_a_secret_key_are_refused(alice, alice_bot):
    response = alice.client.post("/v1/auth/keys", {"name": "server", "bot_ids": [alice_bot.public_id]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "bot_ids"


def test_another_tenants_bot_cannot_be_given_to_a_key(alice, charlie):
    charlie_bot = BotFactory(tenant=charlie.tenant)
    response = alice.client.post(
        "/v1/auth/keys",
        {"name": "Website", "type": "publishable", "bot_ids": [charlie_bot.public_id], "allowed_origins": [SITE]},
        format="json",
    )
    assert response.status_code == 404
    assert error_code(response) == "bot_not_found"


def test_no_identity_secret_or_publishable_key_is_in_the_database(alice, alice_bot):
    body = create_pk(alice, [alice_bot], identity_verification="required")
    assert body["identity_secret"].startswith("bhid_")
    for secret in (body["key"], body["identity_secret"]):
        assert database_cells_containing(secret) == [], secret


# --- what a publishable key may call ------------------------------------------------


def test_a_publishable_key_reads_its_bots_public_settings_only(alice, alice_bot):
    alice_bot.instructions = "Never reveal the discount code SECRET42."
    alice_bot.welcome_message = "Hi! Ask me anything."
    alice_bot.save()
    key = create_pk(alice, [alice_bot])["key"]
    response = browser(key).get(f"/v1/bots/{alice_bot.public_id}/public")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {
        "id": alice_bot.public_id,
        "object": "bot.public",
        "name": alice_bot.name,
        "welcome_message": "Hi! Ask me anything.",
        "lead_capture": {"enabled": False, "fields": ["name", "email", "phone"]},
        "widget": {"color": "#2563eb", "position": "right", "launcher_text": "Chat with us"},
        "handoff": {"enabled": False},
        "status": "active",
    }
    assert "SECRET42" not in response.content.decode()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/bots"),
        ("get", "/v1/bots/{bot}"),
        ("patch", "/v1/bots/{bot}"),
        ("post", "/v1/knowledge/upload"),
        ("get", "/v1/knowledge/documents"),
        ("get", "/v1/conversations"),
        ("get", "/v1/auth/keys"),
        ("post", "/v1/auth/keys"),
        ("get", "/v1/analytics/overview"),
        ("get", "/v1/webhooks"),
        ("get", "/v1/models"),
    ],
)
def test_a_publishable_key_is_refused_everywhere_else(alice, alice_bot, method, path):
    key = create_pk(alice, [alice_bot])["key"]
    response = getattr(browser(key), method)(path.format(bot=alice_bot.public_id), {}, format="json")
    assert response.status_code == 403, response.content
    assert error_code(response) == "publishable_key_not_allowed"
    assert response.json()["error"]["type"] == "permission_error"


def test_a_publishable_key_is_refused_on_uploads_even_with_a_file(alice, alice_bot):
    key = create_pk(alice, [alice_bot])["key"]
    response = browser(key).post(
        "/v1/knowledge/upload",
        {"bot_id": alice_bot.public_id, "text": "Injected knowledge", "title": "x"},
        format="multipart",
    )
    assert response.status_code == 403
    assert error_code(response) == "publishable_key_not_allowed"
    assert not alice_bot.documents.exists()


def test_a_publishable_key_cannot_be_exchanged_for_an_access_token(alice, alice_bot, anonymous_client):
    key = create_pk(alice, [alice_bot])["key"]
    response = anonymous_client.post("/v1/auth/token", {"grant_type": "api_key", "api_key": key}, format="json")
    assert response.status_code == 403
    assert error_code(response) == "publishable_key_not_allowed"


def test_a_bot_outside_the_key_and_another_tenants_bot_are_404(alice, alice_bot, charlie):
    other_bot = BotFactory(tenant=alice.tenant)
    charlie_bot = BotFactory(tenant=charlie.tenant)
    key = create_pk(alice, [alice_bot])["key"]
    for bot in (other_bot, charlie_bot):
        response = browser(key).get(f"/v1/bots/{bot.public_id}/public")
        assert response.status_code == 404
        assert error_code(response) == "bot_not_found"


def test_a_secret_key_reads_public_settings_too_and_another_tenants_bot_is_404(alice, alice_bot, charlie):
    assert alice.client.get(f"/v1/bots/{alice_bot.public_id}/public").status_code == 200
    assert charlie.client.get(f"/v1/bots/{alice_bot.public_id}/public").status_code == 404


def test_a_revoked_publishable_key_stops_at_once(alice, alice_bot):
    created = create_pk(alice, [alice_bot])
    assert alice.client.delete(f"/v1/auth/keys/{created['id']}").status_code == 200
    response = browser(created["key"]).get(f"/v1/bots/{alice_bot.public_id}/public")
    assert response.status_code == 401
    assert error_code(response) == "api_key_revoked"


# --- origins ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (SITE, True),
        ("https://shop.acme.example", True),  # *.acme.example
        ("https://a.b.acme.example", True),
        ("https://acme.example", False),  # the wildcard is for subdomains
        ("http://www.acme.example", False),  # another scheme
        ("https://www.acme.example:8443", False),  # another port
        ("https://www.acme.example.evil.example", False),
        ("https://evilacme.example", False),
        ("null", False),
        (None, False),
    ],
)
def test_requests_must_come_from_an_allowed_origin(alice, alice_bot, origin, allowed):
    key = create_pk(alice, [alice_bot], allowed_origins=[SITE, "https://*.acme.example"])["key"]
    response = browser(key, origin=origin).get(f"/v1/bots/{alice_bot.public_id}/public")
    if allowed:
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == 403, response.content
        assert error_code(response) == "origin_not_allowed"


def test_the_apis_own_origin_is_allowed_for_the_hosted_chat_page(alice, alice_bot):
    key = create_pk(alice, [alice_bot])["key"]
    assert browser(key, origin="http://testserver").get(f"/v1/bots/{alice_bot.public_id}/public").status_code == 200
    # Behind a proxy that ends TLS the page is https while the request reaches Django as http.
    assert browser(key, origin="https://testserver").get(f"/v1/bots/{alice_bot.public_id}/public").status_code == 200
    assert (
        browser(key, origin="http://testserver:8443").get(f"/v1/bots/{alice_bot.public_id}/public").status_code == 403
    )
    # A same-origin GET carries no Origin; the browser marks it instead.
    same_origin = browser(key, origin=None, HTTP_SEC_FETCH_SITE="same-origin")
    assert same_origin.get(f"/v1/bots/{alice_bot.public_id}/public").status_code == 200


def test_origin_rules_unit():
    assert allowed_origin_normalise("HTTP://LocalHost:8080") == "http://localhost:8080"
    for bad in ("*", "null", "https://*.com", "https://a.example/path", "https://a.example?x=1", "javascript:x"):
        with pytest.raises(InvalidOrigin):
            allowed_origin_normalise(bad)
    assert origin_allowed("https://x.y.acme.example", ["https://*.acme.example"])
    assert not origin_allowed("https://acme.example", ["https://*.acme.example"])


# --- visitors and identities ----------------------------------------------------------


def test_a_visitor_id_is_required(alice, alice_bot):
    key = create_pk(alice, [alice_bot])["key"]
    for visitor in (False, "short", "has spaces in it........"):
        response = browser(key, visitor=visitor).get(f"/v1/bots/{alice_bot.public_id}/public")
        assert response.status_code == 400, visitor
        assert error_code(response) == "visitor_id_required"


def user_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def test_identity_verification_required_refuses_anonymous_and_wrong_hashes(alice, alice_bot):
    created = create_pk(alice, [alice_bot], identity_verification="required")
    path = f"/v1/bots/{alice_bot.public_id}/public"
    anonymous = browser(created["key"]).get(path)
    assert anonymous.status_code == 403
    assert error_code(anonymous) == "identity_verification_required"
    wrong = browser(
        created["key"], HTTP_X_BOTHERO_USER_ID="user-42", HTTP_X_BOTHERO_USER_HASH=user_hash("bhid_guess", "user-42")
    ).get(path)
    assert wrong.status_code == 403
    assert error_code(wrong) == "invalid_user_hash"
    # Another user's correct hash does not pass for this user.
    swapped = browser(
        created["key"],
        HTTP_X_BOTHERO_USER_ID="user-42",
        HTTP_X_BOTHERO_USER_HASH=user_hash(created["identity_secret"], "user-43"),
    ).get(path)
    assert error_code(swapped) == "invalid_user_hash"
    right = browser(
        created["key"],
        HTTP_X_BOTHERO_USER_ID="user-42",
        HTTP_X_BOTHERO_USER_HASH=user_hash(created["identity_secret"], "user-42"),
    ).get(path)
    assert right.status_code == 200, right.content


def test_with_verification_off_a_user_id_is_refused_rather_than_trusted(alice, alice_bot):
    key = create_pk(alice, [alice_bot])["key"]
    response = browser(key, HTTP_X_BOTHERO_USER_ID="admin", HTTP_X_BOTHERO_USER_HASH="0" * 64).get(
        f"/v1/bots/{alice_bot.public_id}/public"
    )
    assert response.status_code == 403
    assert error_code(response) == "identity_verification_off"


# --- abuse limits -----------------------------------------------------------------------


def test_each_visitor_has_its_own_rate_limit_from_the_key(alice, alice_bot):
    key = create_pk(alice, [alice_bot], limits={"visitor_requests_per_minute": 2})["key"]
    path = f"/v1/bots/{alice_bot.public_id}/public"
    address = unique_client_address()
    one, two = browser(key, address=address), browser(key, address=address)
    wait_for_window_room(5)
    assert [one.get(path).status_code for _ in range(2)] == [200, 200]
    refused = one.get(path)
    assert refused.status_code == 429
    assert error_code(refused) == "visitor_rate_limited"
    assert int(refused["Retry-After"]) >= 1
    # Another visitor, from the same address, is not held back.
    assert two.get(path).status_code == 200


def test_a_client_address_has_its_own_rate_limit_across_visitors(alice, alice_bot):
    key = create_pk(alice, [alice_bot], limits={"address_requests_per_minute": 3})["key"]
    path = f"/v1/bots/{alice_bot.public_id}/public"
    address = unique_client_address()
    wait_for_window_room(5)
    statuses = [browser(key, address=address).get(path).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = browser(key, address=address).get(path)
    assert error_code(refused) == "address_rate_limited"
    assert browser(key).get(path).status_code == 200  # another address


# --- CORS ----------------------------------------------------------------------------------


def preflight(path: str, origin: str, method: str = "POST"):
    return APIClient().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-bothero-visitor",
    )


def test_a_preflight_is_answered_for_an_allowed_origin_on_a_publishable_endpoint(alice, alice_bot):
    create_pk(alice, [alice_bot], allowed_origins=["https://*.acme.example"])
    response = preflight(f"/v1/bots/{alice_bot.public_id}/public", "https://shop.acme.example", method="GET")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.acme.example"
    assert "origin" in response["Vary"].lower()
    assert "x-bothero-visitor" in response["Access-Control-Allow-Headers"]
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert response["Access-Control-Max-Age"] == "600"


def test_no_cors_for_other_origins_other_endpoints_or_revoked_keys(alice, alice_bot):
    created = create_pk(alice, [alice_bot])
    public = f"/v1/bots/{alice_bot.public_id}/public"
    assert "Access-Control-Allow-Origin" not in preflight(public, "https://evil.example", "GET")
    # The allowed origin, on endpoints a publishable key may not call.
    for path, method in (("/v1/bots", "GET"), ("/v1/knowledge/upload", "POST"), ("/v1/auth/keys", "POST")):
        assert "Access-Control-Allow-Origin" not in preflight(path, SITE, method), path
    assert "Access-Control-Allow-Origin" not in preflight(f"/v1/bots/{alice_bot.public_id}", SITE, "PATCH")
    # A secret key's response to a browser carries none either.
    response = alice.client.get("/v1/bots", HTTP_ORIGIN=SITE)
    assert response.status_code == 200
    assert not any(name.lower().startswith("access-control-") for name in response.headers)
    alice.client.delete(f"/v1/auth/keys/{created['id']}")
    assert "Access-Control-Allow-Origin" not in preflight(public, SITE, "GET")


def test_responses_to_the_widget_carry_cors_headers_errors_included(alice, alice_bot):
    key = create_pk(alice, [alice_bot])["key"]
    ok = browser(key).get(f"/v1/bots/{alice_bot.public_id}/public")
    assert ok["Access-Control-Allow-Origin"] == SITE
    assert "X-Request-Id" in ok["Access-Control-Expose-Headers"]
    # An error the widget must be able to read (to show why) is readable.
    missing = browser(key).get("/v1/bots/bot_nope/public")
    assert missing.status_code == 404
    assert missing["Access-Control-Allow-Origin"] == SITE
