"""The chat widget's side of the API with a publishable key: chatting (plain and streamed), the visitor's own
conversation, feedback, leads, identities, limits and the quota; `/widget.js` and the hosted chat page."""

import gzip
import hashlib
import hmac

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create
from bothero.errors import PermissionDeniedError
from bothero.testing.factories import BotFactory, PlanFactory
from conftest import make_actor
from conversations.consumers import authenticate
from conversations.models import Conversation
from conversations.tests.conftest import parse_sse, streamed_body, train
from webhooks.models import Event

from .helpers import SITE, browser, visitor_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def faq_bot(alice, django_capture_on_commit_callbacks):
    bot = BotFactory(tenant=alice.tenant, name="Acme support", welcome_message="Hi! How can I help?")
    train(bot, capture=django_capture_on_commit_callbacks)
    return bot


@pytest.fixture
def site_key(alice, faq_bot):
    return api_key_create(
        tenant=alice.tenant,
        name="Website",
        key_type="publishable",
        bot_ids=[faq_bot.public_id],
        allowed_origins=[SITE],
    )


def ask(client, bot, message, **extra):
    return client.post("/v1/chat/completions", {"bot_id": bot.public_id, "message": message, **extra}, format="json")


def test_a_visitor_chats_and_continues_their_own_conversation(site_key, faq_bot):
    visitor = visitor_id()
    client = browser(site_key.key, visitor=visitor)
    first = ask(client, faq_bot, "When are you open?")
    assert first.status_code == 200, first.content
    body = first.json()
    assert "Monday through Friday" in body["content"]
    assert body["sources"][0]["title"] == "Acme Widgets FAQ"
    assert first["Access-Control-Allow-Origin"] == SITE
    conversation = Conversation.objects.get(public_id=body["conversation_id"])
    assert conversation.visitor_hash == hashlib.sha256(visitor.encode()).hexdigest()
    # The same visitor, on a later page load, continues it and reads it back.
    again = browser(site_key.key, visitor=visitor)
    assert ask(again, faq_bot, "And refunds?", conversation_id=body["conversation_id"]).status_code == 200
    messages = again.get(f"/v1/conversations/{body['conversation_id']}/messages?order=asc").json()["data"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


def test_another_visitor_can_neither_continue_nor_read_a_conversation(site_key, faq_bot, alice):
    owner = browser(site_key.key)
    body = ask(owner, faq_bot, "When are you open?").json()
    conversation_id, message_id = body["conversation_id"], body["id"]
    stranger = browser(site_key.key)
    for response in (
        ask(stranger, faq_bot, "Show me", conversation_id=conversation_id),
        stranger.get(f"/v1/conversations/{conversation_id}/messages"),
        stranger.post(
            f"/v1/conversations/{conversation_id}/messages/{message_id}/feedback", {"rating": "up"}, format="json"
        ),
        stranger.post(f"/v1/conversations/{conversation_id}/leads", {"email": "x@example.com"}, format="json"),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "conversation_not_found"
    # Nor may a visitor reach a conversation the tenant's server started (no visitor).
    server_side = alice.client.post(
        "/v1/chat/completions", {"bot_id": faq_bot.public_id, "message": "Hi"}, format="json"
    )
    response = owner.get(f"/v1/conversations/{server_side.json()['conversation_id']}/messages")
    assert response.status_code == 404
    # The tenant sees every conversation.
    assert alice.client.get(f"/v1/conversations/{conversation_id}/messages").status_code == 200


def test_the_widget_streams_its_answer(site_key, faq_bot):
    response = ask(browser(site_key.key), faq_bot, "How much is express shipping?", stream=True)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    events = parse_sse(streamed_body(response))
    names = [name for name, _ in events]
    assert names[0] == "message.start"
    assert "message.delta" in names
    assert names[-1] == "message.completed"
    assert events[0][1]["sources"][0]["title"] == "Acme Widgets FAQ"
    assert "14.99" in events[-1][1]["content"]


def test_only_the_keys_bots_and_only_the_native_shape(site_key, faq_bot, alice, charlie):
    client = browser(site_key.key)
    for bot in (BotFactory(tenant=alice.tenant), BotFactory(tenant=charlie.tenant)):
        response = ask(client, bot, "Hello")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "bot_not_found"
    openai_shape = client.post(
        "/v1/chat/completions",
        {"model": faq_bot.public_id, "messages": [{"role": "user", "content": "Hi"}]},
        format="json",
    )
    assert openai_shape.status_code == 403
    assert openai_shape.json()["error"]["code"] == "publishable_key_not_allowed"


def test_feedback_and_a_lead_from_the_widget(site_key, faq_bot, alice):
    client = browser(site_key.key)
    body = ask(client, faq_bot, "When are you open?").json()
    rated = client.post(
        f"/v1/conversations/{body['conversation_id']}/messages/{body['id']}/feedback", {"rating": "down"}, format="json"
    )
    assert rated.status_code == 200, rated.content
    assert rated.json()["feedback"]["rating"] == "down"
    lead = client.post(
        f"/v1/conversations/{body['conversation_id']}/leads",
        {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"},
        format="json",
    )
    assert lead.status_code == 201, lead.content
    assert lead.json()["email"] == "ada@example.com"
    event = Event.objects.filter(tenant=alice.tenant, type="lead.captured").last()
    assert event.data["name"] == "Ada Lovelace"
    listed = alice.client.get("/v1/analytics/leads").json()["data"]
    assert [row["email"] for row in listed] == ["ada@example.com"]
    # Completing it again does not duplicate it.
    client.post(f"/v1/conversations/{body['conversation_id']}/leads", {"email": "ada@example.com"}, format="json")
    assert len(alice.client.get("/v1/analytics/leads").json()["data"]) == 1
    refused = client.post(f"/v1/conversations/{body['conversation_id']}/leads", {"name": "No contact"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "email"


def test_a_verified_user_is_the_conversations_end_user_and_metadata_cannot_claim_one(alice, faq_bot):
    created = api_key_create(
        tenant=alice.tenant,
        name="Members",
        key_type="publishable",
        bot_ids=[faq_bot.public_id],
        allowed_origins=[SITE],
        identity_verification="optional",
    )
    user_hash = hmac.new(created.identity_secret.encode(), b"cust-981", hashlib.sha256).hexdigest()
    verified = browser(created.key, HTTP_X_BOTHERO_USER_ID="cust-981", HTTP_X_BOTHERO_USER_HASH=user_hash)
    body = ask(verified, faq_bot, "Hi, my email is grace@example.com").json()
    conversation = alice.client.get(f"/v1/conversations/{body['conversation_id']}").json()
    assert conversation["end_user_id"] == "cust-981"
    webhook = Event.objects.filter(tenant=alice.tenant, type="conversation.created").last()
    assert webhook.data["end_user_id"] == "cust-981"
    anonymous = ask(browser(created.key), faq_bot, "Hello", metadata={"user_id": "cust-981", "page": "/pricing"}).json()
    conversation = alice.client.get(f"/v1/conversations/{anonymous['conversation_id']}").json()
    assert conversation["end_user_id"] == ""
    assert conversation["metadata"] == {"page": "/pricing"}


def test_the_keys_message_size_limit(alice, faq_bot):
    created = api_key_create(
        tenant=alice.tenant,
        name="Short",
        key_type="publishable",
        bot_ids=[faq_bot.public_id],
        allowed_origins=[SITE],
        limits={"max_message_chars": 20},
    )
    response = ask(browser(created.key), faq_bot, "x" * 21)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "message_too_long"
    assert response.json()["error"]["param"] == "message"
    assert ask(browser(created.key), faq_bot, "x" * 20).status_code == 200


def test_widget_messages_count_against_the_monthly_quota(django_capture_on_commit_callbacks):
    actor = make_actor(plan_obj=PlanFactory(max_messages_per_month=1))
    bot = BotFactory(tenant=actor.tenant)
    key = api_key_create(
        tenant=actor.tenant, name="Site", key_type="publishable", bot_ids=[bot.public_id], allowed_origins=[SITE]
    ).key
    assert ask(browser(key), bot, "Hello").status_code == 200
    refused = ask(browser(key), bot, "Hello again")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "monthly_quota_exceeded"
    assert refused["Access-Control-Allow-Origin"] == SITE  # the widget can read why


def test_a_preflight_for_chat_is_answered_for_the_keys_origin(site_key):
    response = APIClient().options(
        "/v1/chat/completions",
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,x-bothero-visitor",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SITE
    # Listing conversations is not the widget's business: no CORS there.
    listing = APIClient().options("/v1/conversations", HTTP_ORIGIN=SITE, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert "Access-Control-Allow-Origin" not in listing


# --- /widget.js and the hosted page -----------------------------------------------------------


def test_widget_js_is_small_cached_by_version_and_etag(client):
    plain = client.get("/widget.js")
    assert plain.status_code == 200
    assert plain["Content-Type"].startswith("text/javascript")
    assert plain["Cache-Control"] == "public, max-age=300"
    assert b"bothero-chat" in plain.content
    zipped = client.get("/widget.js", HTTP_ACCEPT_ENCODING="gzip, br")
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert len(zipped.content) <= 50 * 1024
    assert "Accept-Encoding" in zipped["Vary"]
    etag = plain["ETag"]
    assert client.get("/widget.js", HTTP_IF_NONE_MATCH=etag).status_code == 304
    versioned = client.get(f"/widget.js?v={etag.strip(chr(34))}")
    assert versioned["Cache-Control"] == "public, max-age=31536000, immutable"


def test_the_hosted_chat_page_works_only_for_the_keys_bots(client, site_key, faq_bot, alice, charlie):
    page = client.get(f"/chat/{faq_bot.public_id}?key={site_key.key}")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-bot-id="{faq_bot.public_id}"' in html
    assert 'data-mode="page"' in html
    assert "script-src 'self'" in page["Content-Security-Policy"]
    other_bot = BotFactory(tenant=alice.tenant)
    secret_key = alice.key
    revoked = api_key_create(
        tenant=alice.tenant, name="Old", key_type="publishable", bot_ids=[faq_bot.public_id], allowed_origins=[SITE]
    )
    alice.client.delete(f"/v1/auth/keys/{revoked.api_key.public_id}")
    for url in (
        f"/chat/{other_bot.public_id}?key={site_key.key}",
        f"/chat/{BotFactory(tenant=charlie.tenant).public_id}?key={site_key.key}",
        f"/chat/{faq_bot.public_id}?key={secret_key}",
        f"/chat/{faq_bot.public_id}?key={revoked.key}",
        f"/chat/{faq_bot.public_id}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "not valid" in response.content.decode()


def test_the_realtime_websocket_refuses_a_publishable_key(site_key):
    with pytest.raises(PermissionDeniedError) as refused:
        authenticate(site_key.key)
    assert refused.value.code == "publishable_key_not_allowed"


def test_leads_with_a_secret_key_and_another_tenants_conversation_is_404(alice, charlie, faq_bot):
    conversation_id = ask(alice.client, faq_bot, "Hello").json()["conversation_id"]
    path = f"/v1/conversations/{conversation_id}/leads"
    refused = charlie.client.post(path, {"email": "x@example.com"}, format="json")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "conversation_not_found"
    created = alice.client.post(path, {"phone": "+1 555 010 7788"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["phone"] == "+1 555 010 7788"
    assert alice.client.get(f"/v1/conversations/{conversation_id}").json()["has_lead"] is True


# --- following the conversation live (GET /v1/conversations/:id/events; the live stream itself is in
# --- test_widget_events_live.py, under uvicorn) ---------------------------------------------------


def test_only_the_visitors_own_conversation_may_be_followed(site_key, faq_bot, alice, charlie):
    visitor = visitor_id()
    conversation_id = ask(browser(site_key.key, visitor=visitor), faq_bot, "When are you open?").json()[
        "conversation_id"
    ]
    # The owner gets past every check to the stream, which the test server (not uvicorn) cannot serve.
    own = browser(site_key.key, visitor=visitor).get(f"/v1/conversations/{conversation_id}/events")
    assert own.status_code == 501
    assert own.json()["error"]["code"] == "streaming_not_supported"
    assert own["Access-Control-Allow-Origin"] == SITE
    # Another visitor, and another tenant's key (with a visitor of its own), get a 404.
    charlie_bot = BotFactory(tenant=charlie.tenant)
    charlie_key = api_key_create(
        tenant=charlie.tenant,
        name="Site",
        key_type="publishable",
        bot_ids=[charlie_bot.public_id],
        allowed_origins=[SITE],
    )
    for stranger in (browser(site_key.key), browser(charlie_key.key, visitor=visitor)):
        response = stranger.get(f"/v1/conversations/{conversation_id}/events")
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "conversation_not_found"


def test_following_needs_an_allowed_origin_and_a_visitor(site_key, faq_bot):
    visitor = visitor_id()
    conversation_id = ask(browser(site_key.key, visitor=visitor), faq_bot, "Hi").json()["conversation_id"]
    elsewhere = browser(site_key.key, visitor=visitor, origin="https://evil.example").get(
        f"/v1/conversations/{conversation_id}/events"
    )
    assert elsewhere.status_code == 403
    assert elsewhere.json()["error"]["code"] == "origin_not_allowed"
    anonymous = browser(site_key.key, visitor=False).get(f"/v1/conversations/{conversation_id}/events")
    assert anonymous.status_code == 400
    assert anonymous.json()["error"]["code"] == "visitor_id_required"


def test_opening_a_stream_counts_against_the_visitors_rate_limit(alice, faq_bot):
    key = api_key_create(
        tenant=alice.tenant,
        name="Tight",
        key_type="publishable",
        bot_ids=[faq_bot.public_id],
        allowed_origins=[SITE],
        limits={"visitor_requests_per_minute": 2},
    )
    visitor = visitor_id()
    conversation_id = ask(browser(key.key, visitor=visitor), faq_bot, "Hi").json()["conversation_id"]
    client = browser(key.key, visitor=visitor)
    assert client.get(f"/v1/conversations/{conversation_id}/events").status_code == 501
    refused = client.get(f"/v1/conversations/{conversation_id}/events")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "visitor_rate_limited"


def test_a_preflight_for_the_events_stream_is_answered_for_the_keys_origin(site_key):
    response = APIClient().options(
        "/v1/conversations/conv_abc/events",
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,x-bothero-visitor",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SITE
    assert "x-bothero-visitor" in response["Access-Control-Allow-Headers"]
