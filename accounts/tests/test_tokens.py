"""POST /v1/auth/token, POST /v1/auth/refresh, DELETE /v1/auth/revoke, through the public API."""

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.crypto import hash_token

from accounts.models import AccessToken, RefreshToken, TokenFamily
from accounts.services import api_key_create, api_key_revoke, tenant_set_status
from bothero.testing.factories import TEST_PASSWORD
from conftest import make_actor

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["request_id"] == response["X-Request-Id"]
    return body["error"]


def issued(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


# --- exchange ----------------------------------------------------------------------


def test_it_exchanges_an_api_key_for_an_access_and_a_refresh_token(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].startswith("bhat_")
    assert body["refresh_token"].startswith("bhrt_")
    response = tokens.call(body["access_token"])
    assert response.status_code == 200, response.content
    assert response.json()["object"] == "list"


def test_an_access_token_sees_only_its_own_tenant(alice, alice_bot, charlie, tokens):
    alice_token = issued(tokens.exchange_key(alice.key))["access_token"]
    charlie_token = issued(tokens.exchange_key(charlie.key))["access_token"]
    assert [b["id"] for b in tokens.call(alice_token).json()["data"]] == [alice_bot.public_id]
    assert tokens.call(charlie_token).json()["data"] == []
    assert_error(tokens.call(charlie_token, path=f"/v1/bots/{alice_bot.public_id}"), 404, "bot_not_found")


def test_it_exchanges_an_email_and_password(alice, tokens):
    body = issued(tokens.exchange_password(alice.user.email.upper()))
    response = tokens.call(body["access_token"], "post", "/v1/bots", {"name": "Made with a token"})
    assert response.status_code == 201, response.content
    assert alice.tenant.bots.filter(public_id=response.json()["id"]).exists()


def test_it_refuses_a_wrong_password_and_an_unknown_email_alike(alice, tokens):
    wrong = assert_error(tokens.exchange_password(alice.user.email, "not it"), 401, "invalid_credentials")
    unknown = assert_error(tokens.exchange_password("nobody@example.com"), 401, "invalid_credentials")
    assert wrong["message"] == unknown["message"]
    assert wrong["type"] == "authentication_error"


def test_it_refuses_an_invalid_or_revoked_api_key(alice, tokens):
    assert_error(tokens.exchange_key("bh_live_" + "x" * 38), 401, "invalid_api_key")
    api_key_revoke(tenant=alice.tenant, public_id=alice.tenant.api_keys.get().public_id)
    assert_error(tokens.exchange_key(alice.key), 401, "api_key_revoked")


def test_a_bad_exchange_request_names_the_missing_field(tokens):
    error = assert_error(
        tokens.client.post("/v1/auth/token", {"grant_type": "api_key"}, format="json"), 400, "missing_param"
    )
    assert error["param"] == "api_key"
    error = assert_error(
        tokens.client.post("/v1/auth/token", {"grant_type": "magic"}, format="json"), 400, "invalid_choice"
    )
    assert error["param"] == "grant_type"


@pytest.mark.parametrize("plan_slug", ["free", "starter", "pro"])
def test_a_plan_without_api_access_gets_no_tokens(plan_slug, tokens):
    actor = make_actor(plan_slug)
    error = assert_error(tokens.exchange_key(actor.key), 403, "plan_upgrade_required")
    assert error["type"] == "permission_error"
    assert_error(tokens.exchange_password(actor.user.email), 403, "plan_upgrade_required")
    assert not TokenFamily.objects.filter(tenant=actor.tenant).exists()


# --- failed attempts per client address ---------------------------------------------


def test_the_eleventh_failed_exchange_in_a_minute_is_refused_even_with_a_good_key(alice, tokens, settings):
    from bothero.testing.helpers import wait_for_window_room

    assert settings.AUTH_FAILURES_PER_MINUTE == 10
    wait_for_window_room(15)
    for _ in range(10):
        assert_error(tokens.exchange_key("bh_live_" + "0" * 38), 401, "invalid_api_key")
    response = tokens.exchange_key(alice.key)
    error = assert_error(response, 429, "too_many_failed_attempts")
    assert error["type"] == "rate_limit_error"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Refreshing from that address is refused too; another address is not affected.
    assert_error(tokens.refresh("bhrt_whatever"), 429, "too_many_failed_attempts")
    from accounts.tests.conftest import TokenClient

    assert TokenClient().exchange_key(alice.key).status_code == 200


def test_successful_exchanges_do_not_use_up_the_failure_budget(alice, tokens):
    for _ in range(12):
        issued(tokens.exchange_key(alice.key))


# --- refresh ----------------------------------------------------------------------------


def test_refresh_rotates_both_tokens(alice, tokens):
    first = issued(tokens.exchange_key(alice.key))
    second = issued(tokens.refresh(first["refresh_token"]))
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert tokens.call(second["access_token"]).status_code == 200
    third = issued(tokens.refresh(second["refresh_token"]))
    assert tokens.call(third["access_token"]).status_code == 200


def test_reusing_a_refresh_token_revokes_the_whole_family(alice, tokens):
    first = issued(tokens.exchange_key(alice.key))
    second = issued(tokens.refresh(first["refresh_token"]))
    assert tokens.call(second["access_token"]).status_code == 200

    error = assert_error(tokens.refresh(first["refresh_token"]), 401, "invalid_refresh_token")
    assert "already used" in error["message"]

    # Every token descending from the first exchange is dead: the new access token and the new refresh token.
    assert_error(tokens.call(second["access_token"]), 401, "invalid_access_token")
    assert_error(tokens.call(first["access_token"]), 401, "invalid_access_token")
    assert_error(tokens.refresh(second["refresh_token"]), 401, "invalid_refresh_token")
    # Another session of the same tenant is untouched.
    other = issued(tokens.exchange_key(alice.key))
    assert tokens.call(other["access_token"]).status_code == 200


def test_an_expired_or_unknown_refresh_token_is_refused(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    RefreshToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(tokens.refresh(body["refresh_token"]), 401, "invalid_refresh_token")
    assert_error(tokens.refresh("bhrt_never-issued"), 401, "invalid_refresh_token")


def test_tokens_die_with_the_api_key_they_were_exchanged_for(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    api_key_revoke(tenant=alice.tenant, public_id=alice.tenant.api_keys.get().public_id)
    assert_error(tokens.call(body["access_token"]), 401, "invalid_access_token")
    assert_error(tokens.refresh(body["refresh_token"]), 401, "invalid_refresh_token")


def test_suspending_a_tenant_ends_its_sessions(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    tenant_set_status(tenant=alice.tenant, status="suspended")
    assert_error(tokens.call(body["access_token"]), 401, "invalid_access_token")
    assert_error(tokens.call(alice.key), 403, "tenant_suspended")
    tenant_set_status(tenant=alice.tenant, status="active")
    assert_error(tokens.call(body["access_token"]), 401, "invalid_access_token")
    assert tokens.call(alice.key).status_code == 200


# --- expiry -------------------------------------------------------------------------------


def test_an_access_token_past_its_ttl_is_refused_and_its_refresh_token_still_works(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    # Time travel: the row's expiry moves into the past (no sleeping).
    AccessToken.objects.filter(family__tenant=alice.tenant).update(expiry=timezone.now() - timedelta(seconds=1))
    response = tokens.call(body["access_token"])
    assert_error(response, 401, "access_token_expired")
    assert response["WWW-Authenticate"].startswith("Bearer")
    renewed = issued(tokens.refresh(body["refresh_token"]))
    assert tokens.call(renewed["access_token"]).status_code == 200


def test_an_access_token_within_its_ttl_works(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    AccessToken.objects.filter(family__tenant=alice.tenant).update(expiry=timezone.now() + timedelta(seconds=30))
    assert tokens.call(body["access_token"]).status_code == 200


# --- revoke --------------------------------------------------------------------------------


def test_revoke_without_a_body_revokes_the_presented_access_token(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    response = tokens.call(body["access_token"], "delete", "/v1/auth/revoke")
    assert response.status_code == 204, response.content
    assert response.content == b""
    assert_error(tokens.call(body["access_token"]), 401, "invalid_access_token")


def test_revoke_takes_an_access_token_in_the_body(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    response = tokens.call(alice.key, "delete", "/v1/auth/revoke", {"token": body["access_token"]})
    assert response.status_code == 204, response.content
    assert_error(tokens.call(body["access_token"]), 401, "invalid_access_token")


def test_revoking_a_refresh_token_ends_its_family(alice, tokens):
    body = issued(tokens.exchange_key(alice.key))
    response = tokens.call(alice.key, "delete", "/v1/auth/revoke", {"token": body["refresh_token"]})
    assert response.status_code == 204, response.content
    assert_error(tokens.refresh(body["refresh_token"]), 401, "invalid_refresh_token")
    assert_error(tokens.call(body["access_token"]), 401, "invalid_access_token")


def test_revoking_another_tenants_token_is_a_404_and_leaves_it_working(alice, charlie, tokens):
    alice_tokens = issued(tokens.exchange_key(alice.key))
    for token in (alice_tokens["access_token"], alice_tokens["refresh_token"]):
        error = assert_error(
            tokens.call(charlie.key, "delete", "/v1/auth/revoke", {"token": token}), 404, "token_not_found"
        )
        assert error["param"] == "token"
    assert tokens.call(alice_tokens["access_token"]).status_code == 200
    assert issued(tokens.refresh(alice_tokens["refresh_token"]))


def test_revoke_with_an_api_key_and_no_body_says_what_to_send(alice, tokens):
    error = assert_error(tokens.call(alice.key, "delete", "/v1/auth/revoke"), 400, "missing_param")
    assert error["param"] == "token"


def test_revoke_needs_a_credential(tokens):
    response = tokens.client.delete("/v1/auth/revoke")
    assert_error(response, 401, "missing_credentials")
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- signing applies to tokens of a signing key ---------------------------------------------


def test_a_token_exchanged_for_a_signing_key_must_sign_its_requests_too(alice, tokens):
    from bothero.testing.helpers import signed_headers

    created = api_key_create(tenant=alice.tenant, name="signed", require_signature=True)
    body = issued(tokens.exchange_key(created.key))
    assert_error(tokens.call(body["access_token"]), 401, "signature_required")
    headers = signed_headers(created.signing_secret, method="GET", path="/v1/bots")
    response = tokens.client.get("/v1/bots", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}", headers=headers)
    assert response.status_code == 200, response.content


# --- tenants, rate limit, housekeeping ------------------------------------------------------


def test_a_member_of_several_tenants_names_the_one_to_sign_in_to(alice, charlie, tokens):
    from accounts.models import Membership

    Membership.objects.create(tenant=charlie.tenant, user=alice.user, role="member")
    default = issued(tokens.exchange_password(alice.user.email))
    assert AccessToken.objects.get(digest=hash_token(default["access_token"])).tenant == alice.tenant
    response = tokens.client.post(
        "/v1/auth/token",
        {
            "grant_type": "password",
            "email": alice.user.email,
            "password": TEST_PASSWORD,
            "tenant_id": charlie.tenant.public_id,
        },
        format="json",
    )
    chosen = issued(response)
    assert [b["id"] for b in tokens.call(chosen["access_token"]).json()["data"]] == []
    assert AccessToken.objects.filter(tenant=charlie.tenant).count() == 1
    stranger = make_actor()
    refused = tokens.client.post(
        "/v1/auth/token",
        {
            "grant_type": "password",
            "email": alice.user.email,
            "password": TEST_PASSWORD,
            "tenant_id": stranger.tenant.public_id,
        },
        format="json",
    )
    assert_error(refused, 401, "invalid_credentials")


def test_exchanges_count_against_the_tenants_rate_limit(tokens):
    from bothero.testing.factories import PlanFactory
    from bothero.testing.helpers import wait_for_window_room

    actor = make_actor(plan_obj=PlanFactory(requests_per_minute=2))
    wait_for_window_room(10)
    first = issued(tokens.exchange_key(actor.key))
    issued(tokens.refresh(first["refresh_token"]))
    response = tokens.exchange_key(actor.key)
    assert_error(response, 429, "rate_limit_exceeded")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["X-RateLimit-Remaining"] == "0"


def test_housekeeping_purges_expired_tokens_and_keeps_live_ones(alice, tokens):
    from accounts.services import tokens_purge_expired
    from accounts.tasks import purge_expired_tokens

    old = issued(tokens.exchange_key(alice.key))
    live = issued(tokens.exchange_key(alice.key))
    old_family = TokenFamily.objects.order_by("id").first()
    past = timezone.now() - timedelta(seconds=1)
    AccessToken.objects.filter(family=old_family).update(expiry=past)
    RefreshToken.objects.filter(family=old_family).update(expires_at=past)
    assert tokens_purge_expired() == 3  # the access token, the refresh token, their family
    assert not TokenFamily.objects.filter(pk=old_family.pk).exists()
    assert tokens.call(live["access_token"]).status_code == 200
    assert_error(tokens.refresh(old["refresh_token"]), 401, "invalid_refresh_token")
    assert purge_expired_tokens.delay().get() == 0


def test_housekeeping_keeps_a_used_refresh_token_so_its_reuse_is_still_caught(alice, tokens):
    from accounts.services import tokens_purge_expired

    first = issued(tokens.exchange_key(alice.key))
    second = issued(tokens.refresh(first["refresh_token"]))
    AccessToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    tokens_purge_expired()
    assert_error(tokens.refresh(first["refresh_token"]), 401, "invalid_refresh_token")
    assert_error(tokens.refresh(second["refresh_token"]), 401, "invalid_refresh_token")


def test_a_refresh_refused_by_the_rate_limit_leaves_the_refresh_token_usable(tokens):
    from bothero.testing.factories import PlanFactory
    from bothero.testing.helpers import wait_for_window_room

    actor = make_actor(plan_obj=PlanFactory(requests_per_minute=1))
    wait_for_window_room(10)
    body = issued(tokens.exchange_key(actor.key))
    assert_error(tokens.refresh(body["refresh_token"]), 429, "rate_limit_exceeded")
    assert RefreshToken.objects.get(family__tenant=actor.tenant).used_at is None
    assert tokens.call(body["access_token"]).status_code == 429  # same budget; the session itself is intact
    assert TokenFamily.objects.get(tenant=actor.tenant).revoked_at is None
