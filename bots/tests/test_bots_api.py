"""Bots through the public API: CRUD, validation, plan limit, events, tenancy."""

import pytest

from bothero.testing.factories import BotFactory, PlanFactory
from bots.models import Bot
from conftest import make_actor
from webhooks.models import Event

pytestmark = pytest.mark.django_db

BOT_FIELDS = {
    "id",
    "object",
    "name",
    "description",
    "instructions",
    "model",
    "temperature",
    "max_tokens",
    "welcome_message",
    "fallback_message",
    "retrieval",
    "lead_capture",
    "widget",
    "handoff",
    "status",
    "created_at",
    "updated_at",
}


def test_it_creates_a_bot_with_defaults_and_emits_bot_created(alice):
    response = alice.client.post("/v1/bots", {"name": "Support"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == BOT_FIELDS
    assert body["id"].startswith("bot_")
    assert body["object"] == "bot"
    assert body["model"] == "gpt-oss-120b"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 512
    assert body["retrieval"] == {"top_k": 5, "min_score": 0.0}
    assert body["lead_capture"] == {"enabled": False, "fields": ["name", "email", "phone"]}
    assert body["status"] == "active"
    assert body["fallback_message"]
    assert body["created_at"].endswith("Z")
    event = Event.objects.get(tenant=alice.tenant, type="bot.created")
    assert event.data["id"] == body["id"]
    assert event.data["name"] == "Support"


def test_it_creates_a_bot_with_every_field(alice):
    payload = {
        "name": "Sales",
        "description": "Answers pricing questions",
        "instructions": "You are a concise sales assistant.",
        "model": "llama-3.1-8b",
        "temperature": 0.7,
        "max_tokens": 1024,
        "welcome_message": "Hi!",
        "fallback_message": "Let me find a human.",
        "retrieval": {"top_k": 8, "min_score": 0.3},
        "lead_capture": {"enabled": True, "fields": ["email"]},
        "status": "disabled",
    }
    body = alice.client.post("/v1/bots", payload, format="json").json()
    assert {k: body[k] for k in payload} == payload
    assert alice.client.get(f"/v1/bots/{body['id']}").json() == body


def test_get_returns_the_bot(alice, alice_bot):
    response = alice.client.get(f"/v1/bots/{alice_bot.public_id}")
    assert response.status_code == 200
    assert response.json()["id"] == alice_bot.public_id
    assert response.json()["name"] == alice_bot.name


def test_list_returns_the_tenants_bots_newest_first(alice):
    older, newer = BotFactory(tenant=alice.tenant), BotFactory(tenant=alice.tenant)
    body = alice.client.get("/v1/bots").json()
    assert [b["id"] for b in body["data"]] == [newer.public_id, older.public_id]
    assert set(body["data"][0]) == BOT_FIELDS


def test_patch_changes_only_what_is_sent_and_merges_nested_settings(alice, alice_bot):
    url = f"/v1/bots/{alice_bot.public_id}"
    response = alice.client.patch(url, {"temperature": 1.1, "retrieval": {"top_k": 3}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["temperature"] == 1.1
    assert body["retrieval"] == {"top_k": 3, "min_score": 0.0}
    assert body["name"] == alice_bot.name
    assert body["model"] == "gpt-oss-120b"
    body = alice.client.patch(url, {"lead_capture": {"enabled": True}}, format="json").json()
    assert body["lead_capture"] == {"enabled": True, "fields": ["name", "email", "phone"]}
    assert Event.objects.filter(tenant=alice.tenant, type="bot.updated").count() == 2
    assert Event.objects.filter(type="bot.updated").last().data["lead_capture"]["enabled"] is True


def test_the_widgets_look_is_set_with_patch_and_merges(alice, alice_bot):
    url = f"/v1/bots/{alice_bot.public_id}"
    assert alice.client.get(url).json()["widget"] == {
        "color": "#2563eb",
        "position": "right",
        "launcher_text": "Chat with us",
    }
    response = alice.client.patch(url, {"widget": {"color": "#0F766E", "position": "left"}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["widget"] == {"color": "#0F766E", "position": "left", "launcher_text": "Chat with us"}
    body = alice.client.patch(url, {"widget": {"launcher_text": "Ask Acme"}}, format="json").json()
    assert body["widget"] == {"color": "#0F766E", "position": "left", "launcher_text": "Ask Acme"}
    assert Event.objects.filter(type="bot.updated").last().data["widget"]["launcher_text"] == "Ask Acme"
    # What the widget reads (with any key of the tenant) follows.
    assert alice.client.get(f"{url}/public").json()["widget"]["launcher_text"] == "Ask Acme"


def test_a_patch_that_changes_nothing_emits_no_event(alice, alice_bot):
    response = alice.client.patch(f"/v1/bots/{alice_bot.public_id}", {"name": alice_bot.name}, format="json")
    assert response.status_code == 200
    assert not Event.objects.filter(type="bot.updated").exists()


def test_delete_removes_the_bot_and_emits_bot_deleted(alice, alice_bot):
    response = alice.client.delete(f"/v1/bots/{alice_bot.public_id}")
    assert response.status_code == 200
    assert response.json() == {"id": alice_bot.public_id, "object": "bot", "deleted": True}
    assert not Bot.objects.filter(pk=alice_bot.pk).exists()
    assert Event.objects.get(type="bot.deleted").data == {"id": alice_bot.public_id, "object": "bot", "deleted": True}
    assert alice.client.get(f"/v1/bots/{alice_bot.public_id}").status_code == 404


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ({}, "name", "missing_param"),
        ({"name": ""}, "name", "invalid_blank"),
        ({"name": "x" * 101}, "name", "invalid_max_length"),
        ({"name": "x", "temperature": 2.5}, "temperature", "invalid_max_value"),
        ({"name": "x", "temperature": "hot"}, "temperature", "invalid_request"),
        ({"name": "x", "max_tokens": 0}, "max_tokens", "invalid_min_value"),
        ({"name": "x", "retrieval": {"min_score": 1.5}}, "retrieval.min_score", "invalid_max_value"),
        ({"name": "x", "retrieval": {"top_n": 3}}, "retrieval.top_n", "unknown_parameter"),
        ({"name": "x", "lead_capture": {"fields": ["address"]}}, "lead_capture.fields.0", "invalid_choice"),
        ({"name": "x", "status": "deleted"}, "status", "invalid_choice"),
        ({"name": "x", "temperature": "0.5"}, "temperature", "invalid_request"),
        ({"name": 5}, "name", "invalid_request"),
        ({"name": "x", "fallback_message": 0}, "fallback_message", "invalid_request"),
        ({"name": "x", "max_tokens": 10.5}, "max_tokens", "invalid_request"),
        ({"name": "x", "max_tokens": True}, "max_tokens", "invalid_request"),
        ({"name": "x", "lead_capture": {"enabled": 1}}, "lead_capture.enabled", "invalid_request"),
        ({"name": "x", "lead_capture": {"fields": ["email", "email"]}}, "lead_capture.fields", "invalid_duplicate"),
        ({"name": "x", "widget": {"color": "red"}}, "widget.color", "invalid_color"),
        ({"name": "x", "widget": {"position": "top"}}, "widget.position", "invalid_choice"),
        ({"name": "x", "widget": {"launcher_text": "x" * 41}}, "widget.launcher_text", "invalid_max_length"),
        ({"name": "x", "widget": {"font": "Comic Sans"}}, "widget.font", "unknown_parameter"),
        ({"name": "x", "id": "bot_mine"}, "id", "unknown_parameter"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(alice, payload, param, code):
    response = alice.client.post("/v1/bots", payload, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert not Bot.objects.filter(tenant=alice.tenant).exists()


def test_a_json_body_that_is_not_an_object_is_a_400(alice):
    response = alice.client.post("/v1/bots", ["name"], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_plans_bot_limit_is_a_403_plan_limit_reached():
    actor = make_actor(plan_obj=PlanFactory(max_bots=2))
    for name in ("one", "two"):
        assert actor.client.post("/v1/bots", {"name": name}, format="json").status_code == 201
    response = actor.client.post("/v1/bots", {"name": "three"}, format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", "plan_limit_reached")
    assert "2 bots" in error["message"]
    assert actor.tenant.bots.count() == 2
    assert Event.objects.filter(tenant=actor.tenant, type="bot.created").count() == 2
    # Deleting one makes room again.
    actor.client.delete(f"/v1/bots/{actor.tenant.bots.first().public_id}")
    assert actor.client.post("/v1/bots", {"name": "three"}, format="json").status_code == 201


def test_an_unlimited_plan_has_no_bot_limit():
    actor = make_actor("enterprise")
    BotFactory.create_batch(25, tenant=actor.tenant)
    assert actor.client.post("/v1/bots", {"name": "26th"}, format="json").status_code == 201


def test_an_outsider_gets_404_for_a_bot_on_every_endpoint(alice_bot, charlie):
    url = f"/v1/bots/{alice_bot.public_id}"
    for method in ("get", "patch", "delete"):
        response = getattr(charlie.client, method)(url, {"name": "x"} if method == "patch" else None, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "bot_not_found"
    assert Bot.objects.filter(pk=alice_bot.pk, name=alice_bot.name).exists()
    assert not Event.objects.filter(tenant=alice_bot.tenant).exists()


def test_an_unknown_bot_id_is_a_404(alice):
    response = alice.client.get("/v1/bots/bot_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bot_not_found"
