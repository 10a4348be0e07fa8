"""The staff admin: who may enter, tenants with usage and their actions, plans, users, API keys, bots."""

import hashlib
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey, Plan, Tenant, TokenFamily
from accounts.services import usage_increment
from accounts.tests.test_api_keys import database_cells_containing
from bothero.testing.factories import BotFactory
from webhooks.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    user = get_user_model().objects.create(
        username="staff@bothero.test", email="staff@bothero.test", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(user)
    return client


def action(client: Client, url: str, name: str, objects, **extra):
    data = {"action": name, "_selected_action": [str(o.pk) for o in objects], **extra}
    return client.post(url, data)


def api_status(key: str) -> int:
    return APIClient().get("/v1/bots", HTTP_AUTHORIZATION=f"Bearer {key}").status_code


def test_only_staff_may_enter(alice):
    assert Client().get("/admin/").status_code == 302
    not_staff = Client()
    not_staff.force_login(alice.user)
    response = not_staff.get("/admin/accounts/tenant/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_every_page_renders_for_staff(staff, alice, alice_bot):
    for url in (
        "/admin/",
        "/admin/accounts/tenant/",
        f"/admin/accounts/tenant/{alice.tenant.pk}/change/",
        "/admin/accounts/tenant/add/",
        "/admin/accounts/plan/",
        f"/admin/accounts/plan/{alice.tenant.plan.pk}/change/",
        "/admin/accounts/apikey/",
        "/admin/accounts/apikey/add/",
        f"/admin/accounts/apikey/{alice.tenant.api_keys.get().pk}/change/",
        "/admin/accounts/usagecounter/",
        "/admin/auth/user/",
        f"/admin/auth/user/{alice.user.pk}/change/",
        "/admin/bots/bot/",
        f"/admin/bots/bot/{alice_bot.pk}/change/",
    ):
        assert staff.get(url).status_code == 200, url


def test_the_tenant_list_shows_plan_and_this_months_usage(staff, alice):
    usage_increment(tenant=alice.tenant, messages=42, prompt_tokens=1000, completion_tokens=234)
    page = staff.get("/admin/accounts/tenant/").content.decode()
    row = next(line for line in page.split("<tr") if alice.tenant.public_id in line)
    assert "Legend" in row
    assert ">42<" in row
    assert ">1234<" in row
    detail = staff.get(f"/admin/accounts/tenant/{alice.tenant.pk}/change/").content.decode()
    assert "42 messages (limit 50000)" in detail
    assert alice.user.email in detail  # the members inline


def test_change_plan_asks_for_the_plan_then_moves_the_tenants(staff, alice, charlie):
    url = "/admin/accounts/tenant/"
    form = action(staff, url, "change_plan", [alice.tenant, charlie.tenant])
    assert form.status_code == 200
    assert b'name="plan"' in form.content
    pro = Plan.objects.get(slug="pro")
    done = action(staff, url, "change_plan", [alice.tenant, charlie.tenant], apply="1", plan=str(pro.pk))
    assert done.status_code == 302
    assert set(Tenant.objects.filter(plan=pro).values_list("pk", flat=True)) == {alice.tenant.pk, charlie.tenant.pk}
    response = alice.client.get("/v1/bots")
    assert response.json()["error"]["code"] == "plan_upgrade_required"


def test_suspend_and_reactivate_actions(staff, alice, tokens):
    session = tokens.exchange_key(alice.key).json()
    assert action(staff, "/admin/accounts/tenant/", "suspend", [alice.tenant]).status_code == 302
    alice.tenant.refresh_from_db()
    assert alice.tenant.status == "suspended"
    assert alice.client.get("/v1/bots").json()["error"]["code"] == "tenant_suspended"
    assert TokenFamily.objects.get(tenant=alice.tenant).revoked_at is not None
    assert tokens.call(session["access_token"]).status_code == 401
    action(staff, "/admin/accounts/tenant/", "reactivate", [alice.tenant])
    alice.tenant.refresh_from_db()
    assert alice.tenant.status == "active"
    assert alice.client.get("/v1/bots").status_code == 200


def test_creating_a_key_in_the_admin_shows_it_once_and_stores_only_its_hash(staff, alice):
    response = staff.post(
        "/admin/accounts/apikey/add/",
        {"tenant": alice.tenant.pk, "name": "From the admin", "require_signature": "on"},
    )
    assert response.status_code == 200, response.content
    page = response.content.decode()
    key = re.search(r'id="api-key">(bh_live_\w+)<', page).group(1)
    secret = re.search(r'id="signing-secret">(bhsig_\w+)<', page).group(1)
    assert "shown only on this page" in page
    assert "no-store" in response["Cache-Control"]
    row = ApiKey.objects.get(name="From the admin")
    assert row.tenant == alice.tenant
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.require_signature
    assert row.created_by.username == "staff@bothero.test"
    # Not in any table (sessions and messages included), and not on the key's own page.
    assert database_cells_containing(key) == []
    assert database_cells_containing(secret) == []
    assert key not in staff.get(f"/admin/accounts/apikey/{row.pk}/change/").content.decode()
    # It works (a signing key: an unsigned call is refused for the signature, not for the key).
    unsigned = APIClient().get("/v1/bots", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert unsigned.json()["error"]["code"] == "signature_required"


def test_a_publishable_key_is_created_in_the_admin_with_its_bots_and_origins(staff, alice, alice_bot, charlie):
    form = {
        "tenant": alice.tenant.pk,
        "name": "Website",
        "key_type": "publishable",
        "bots": [alice_bot.pk],
        "allowed_origins": "https://WWW.acme.example\nhttps://*.acme.example",
        "identity_verification": "required",
        "visitor_requests_per_minute": "5",
    }
    # Another tenant's bot, or a bare *, is a form error, not a key.
    refused = staff.post("/admin/accounts/apikey/add/", {**form, "bots": [BotFactory(tenant=charlie.tenant).pk]})
    assert refused.status_code == 200
    assert "Every bot must belong to the key" in refused.content.decode()
    refused = staff.post("/admin/accounts/apikey/add/", {**form, "allowed_origins": "*"})
    assert "bare" in refused.content.decode()
    assert not ApiKey.objects.filter(name="Website").exists()
    response = staff.post("/admin/accounts/apikey/add/", form)
    assert response.status_code == 200, response.content
    page = response.content.decode()
    key = re.search(r'id="api-key">(pk_live_\w+)<', page).group(1)
    assert re.search(r'id="identity-secret">(bhid_\w+)<', page)
    row = ApiKey.objects.get(name="Website")
    assert row.key_type == "publishable"
    assert list(row.bots.all()) == [alice_bot]
    assert row.allowed_origins == ["https://www.acme.example", "https://*.acme.example"]
    assert row.visitor_requests_per_minute == 5
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    change_page = staff.get(f"/admin/accounts/apikey/{row.pk}/change/").content.decode()
    assert "https://*.acme.example" in change_page
    assert staff.get("/admin/accounts/apikey/?key_type__exact=publishable").status_code == 200


def test_the_revoke_action_revokes_keys_and_their_tokens(staff, alice, tokens):
    session = tokens.exchange_key(alice.key).json()
    key_row = alice.tenant.api_keys.get()
    assert action(staff, "/admin/accounts/apikey/", "revoke", [key_row]).status_code == 302
    key_row.refresh_from_db()
    assert key_row.revoked_at is not None
    assert api_status(alice.key) == 401
    assert tokens.call(session["access_token"]).status_code == 401


def test_the_user_page_shows_memberships(staff, alice):
    page = staff.get(f"/admin/auth/user/{alice.user.pk}/change/").content.decode()
    assert alice.tenant.name in page
    listing = staff.get("/admin/auth/user/").content.decode()
    assert f"{alice.tenant.name} (owner)" in listing


def test_plans_are_edited_as_data(staff, alice):
    legend = Plan.objects.get(slug="legend")
    page = staff.get("/admin/accounts/plan/").content.decode()
    assert "$99.00" in page
    response = staff.post(
        f"/admin/accounts/plan/{legend.pk}/change/",
        {
            "slug": "legend",
            "name": "Legend",
            "monthly_price_cents": 9900,
            "api_access": "on",
            "max_bots": 20,
            "max_documents": 1000,
            "max_storage_mb": 2000,
            "max_messages_per_month": 50000,
            "requests_per_minute": 5,
            "sort_order": 3,
        },
    )
    assert response.status_code == 302, response.content
    assert alice.client.get("/v1/bots")["X-RateLimit-Limit"] == "5"


def test_editing_and_deleting_a_bot_in_the_admin_goes_through_the_services(staff, alice):
    bot = BotFactory(tenant=alice.tenant, name="Old name")
    form = {
        "name": "New name",
        "description": "",
        "instructions": "",
        "model": "gpt-oss-120b",
        "temperature": 0.2,
        "max_tokens": 512,
        "welcome_message": "",
        "fallback_message": "Sorry.",
        "retrieval": '{"top_k": 4, "min_score": 0.1}',
        "lead_capture": '{"enabled": false, "fields": ["email"]}',
        "widget": '{"color": "#112233", "position": "left", "launcher_text": "Help"}',
        "handoff": '{"enabled": true, "phrases": ["agent please"], "after_fallbacks": 3, "message": "Hold on."}',
        "status": "active",
    }
    response = staff.post(f"/admin/bots/bot/{bot.pk}/change/", form)
    assert response.status_code == 302, response.content
    bot.refresh_from_db()
    assert (bot.name, bot.retrieval["top_k"]) == ("New name", 4)
    assert bot.widget == {"color": "#112233", "position": "left", "launcher_text": "Help"}
    assert bot.handoff == {"enabled": True, "phrases": ["agent please"], "after_fallbacks": 3, "message": "Hold on."}
    assert Event.objects.get(tenant=alice.tenant, type="bot.updated").data["name"] == "New name"

    bad = staff.post(f"/admin/bots/bot/{bot.pk}/change/", {**form, "retrieval": '{"top_k": 0}'})
    assert bad.status_code == 200  # the form again, with the error
    bot.refresh_from_db()
    assert bot.retrieval["top_k"] == 4

    assert staff.post(f"/admin/bots/bot/{bot.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not alice.tenant.bots.exists()
    assert Event.objects.filter(tenant=alice.tenant, type="bot.deleted").count() == 1
