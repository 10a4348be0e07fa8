"""Conversations: list with filters, detail, delete, messages, feedback — and Charlie's 404s."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bothero.testing.factories import BotFactory, ConversationFactory, LeadFactory, MessageFactory
from conversations.models import Conversation, Lead, Message


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["data"]]


@pytest.fixture
def conversation(alice_bot):
    conversation = ConversationFactory(bot=alice_bot, end_user_id="u-1", metadata={"page": "/pricing"})
    MessageFactory(conversation=conversation, role="user", content="Hello")
    MessageFactory(
        conversation=conversation,
        role="assistant",
        content="Hi! How can I help?",
        model="gpt-oss-120b",
        prompt_tokens=12,
        completion_tokens=6,
        latency_ms=321,
        sources=[{"document_id": "doc_1", "title": "FAQ", "chunk_id": "chk_1", "score": 0.5, "snippet": "Hi"}],
    )
    MessageFactory(conversation=conversation, role="user", content="Pricing?")
    return conversation


def test_it_lists_conversations_newest_first(alice, alice_bot):
    older, newer = ConversationFactory(bot=alice_bot), ConversationFactory(bot=alice_bot)
    response = alice.client.get("/v1/conversations")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert ids(response) == [newer.public_id, older.public_id]
    assert body["data"][0]["object"] == "conversation"
    assert body["data"][0]["bot_id"] == alice_bot.public_id
    assert body["has_more"] is False


def test_the_list_pages_with_a_cursor(alice, alice_bot):
    made = [ConversationFactory(bot=alice_bot).public_id for _ in range(5)]
    first = alice.client.get("/v1/conversations?limit=2").json()
    assert first["has_more"] is True
    second = alice.client.get(f"/v1/conversations?limit=2&cursor={first['next_cursor']}").json()
    third = alice.client.get(f"/v1/conversations?limit=2&cursor={second['next_cursor']}").json()
    seen = [c["id"] for page in (first, second, third) for c in page["data"]]
    assert seen == list(reversed(made))
    assert third["has_more"] is False


def test_it_filters_by_bot_dates_and_lead(alice, alice_bot):
    other_bot = BotFactory(tenant=alice.tenant)
    now = timezone.now()
    old = ConversationFactory(bot=alice_bot)
    Conversation.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=10))
    recent = ConversationFactory(bot=alice_bot, has_lead=True)
    elsewhere = ConversationFactory(bot=other_bot)
    assert ids(alice.client.get(f"/v1/conversations?bot_id={alice_bot.public_id}")) == [
        recent.public_id,
        old.public_id,
    ]
    after = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(alice.client.get(f"/v1/conversations?created_after={after}")) == [
        elsewhere.public_id,
        recent.public_id,
    ]
    assert ids(alice.client.get(f"/v1/conversations?created_before={after}")) == [old.public_id]
    assert ids(alice.client.get("/v1/conversations?has_lead=true")) == [recent.public_id]
    assert ids(alice.client.get("/v1/conversations?has_lead=false")) == [elsewhere.public_id, old.public_id]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("created_after=yesterday", "created_after"),
        ("has_lead=maybe", "has_lead"),
        # The schema says boolean: `null`, `1`, `yes` and empty are not "no filter" but a mistake.
        ("has_lead=null", "has_lead"),
        ("has_lead=1", "has_lead"),
        ("has_lead=yes", "has_lead"),
        ("has_lead=", "has_lead"),
        ("limit=0", "limit"),
    ],
)
def test_bad_filters_are_400(alice, query, param):
    response = alice.client.get(f"/v1/conversations?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_an_outsider_sees_none_of_alices_conversations(alice, conversation, charlie):
    assert ids(charlie.client.get("/v1/conversations")) == []
    response = charlie.client.get(f"/v1/conversations?bot_id={conversation.bot.public_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bot_not_found"


def test_it_shows_a_conversation(alice, conversation):
    response = alice.client.get(f"/v1/conversations/{conversation.public_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == conversation.public_id
    assert body["end_user_id"] == "u-1"
    assert body["metadata"] == {"page": "/pricing"}
    assert set(body) == {
        "id",
        "object",
        "bot_id",
        "end_user_id",
        "metadata",
        "message_count",
        "has_lead",
        "status",
        "handoff_reason",
        "status_changed_at",
        "last_message_at",
        "created_at",
        "updated_at",
    }


def test_it_lists_messages_oldest_first_or_newest_first(alice, conversation):
    response = alice.client.get(f"/v1/conversations/{conversation.public_id}/messages")
    assert response.status_code == 200
    contents = [m["content"] for m in response.json()["data"]]
    assert contents == ["Hello", "Hi! How can I help?", "Pricing?"]
    desc = alice.client.get(f"/v1/conversations/{conversation.public_id}/messages?order=desc").json()
    assert [m["content"] for m in desc["data"]] == ["Pricing?", "Hi! How can I help?", "Hello"]
    assistant = response.json()["data"][1]
    assert assistant["object"] == "message"
    assert assistant["conversation_id"] == conversation.public_id
    assert assistant["usage"] == {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}
    assert assistant["model"] == "gpt-oss-120b"
    assert assistant["latency_ms"] == 321
    assert assistant["status"] == "complete"
    assert assistant["feedback"] is None
    assert assistant["sources"][0]["chunk_id"] == "chk_1"


def test_messages_page_with_a_cursor_in_either_order(alice, conversation):
    url = f"/v1/conversations/{conversation.public_id}/messages"
    first = alice.client.get(f"{url}?limit=2").json()
    rest = alice.client.get(f"{url}?limit=2&cursor={first['next_cursor']}").json()
    assert [m["content"] for m in first["data"] + rest["data"]] == ["Hello", "Hi! How can I help?", "Pricing?"]
    first = alice.client.get(f"{url}?limit=2&order=desc").json()
    rest = alice.client.get(f"{url}?limit=2&order=desc&cursor={first['next_cursor']}").json()
    assert [m["content"] for m in first["data"] + rest["data"]] == ["Pricing?", "Hi! How can I help?", "Hello"]
    assert alice.client.get(f"{url}?order=sideways").status_code == 400


def test_feedback_rates_an_assistant_message(alice, conversation):
    assistant = conversation.messages.get(role="assistant")
    url = f"/v1/conversations/{conversation.public_id}/messages/{assistant.public_id}/feedback"
    response = alice.client.post(url, {"rating": "down", "comment": "Too vague"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["feedback"] == {"rating": "down", "comment": "Too vague"}
    assistant.refresh_from_db()
    assert (assistant.feedback_rating, assistant.feedback_comment) == ("down", "Too vague")
    response = alice.client.post(url, {"rating": "up"}, format="json")
    assert response.json()["feedback"] == {"rating": "up", "comment": "Too vague"}
    response = alice.client.post(url, {"rating": None, "comment": ""}, format="json")
    assert response.json()["feedback"] is None


@pytest.mark.parametrize("body", [{"rating": "meh"}, {"comment": "no rating"}, {"rating": "up", "comment": "x" * 2001}])
def test_bad_feedback_is_400(alice, conversation, body):
    assistant = conversation.messages.get(role="assistant")
    url = f"/v1/conversations/{conversation.public_id}/messages/{assistant.public_id}/feedback"
    assert alice.client.post(url, body, format="json").status_code == 400


def test_feedback_is_for_assistant_messages_only(alice, conversation):
    user_message = conversation.messages.filter(role="user").first()
    url = f"/v1/conversations/{conversation.public_id}/messages/{user_message.public_id}/feedback"
    response = alice.client.post(url, {"rating": "up"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "feedback_not_allowed"


def test_feedback_for_a_message_of_another_conversation_is_404(alice, conversation, alice_bot):
    elsewhere = MessageFactory(conversation=ConversationFactory(bot=alice_bot), role="assistant")
    url = f"/v1/conversations/{conversation.public_id}/messages/{elsewhere.public_id}/feedback"
    response = alice.client.post(url, {"rating": "up"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "message_not_found"


def test_it_deletes_a_conversation_with_its_messages_and_leads(alice, conversation):
    LeadFactory(conversation=conversation)
    response = alice.client.delete(f"/v1/conversations/{conversation.public_id}")
    assert response.status_code == 200
    assert response.json() == {"id": conversation.public_id, "object": "conversation", "deleted": True}
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()
    assert not Lead.objects.exists()
    assert alice.client.get(f"/v1/conversations/{conversation.public_id}").status_code == 404


def test_an_outsider_gets_404_on_every_conversation_endpoint(alice, conversation, charlie):
    assistant = conversation.messages.get(role="assistant")
    base = f"/v1/conversations/{conversation.public_id}"
    responses = [
        charlie.client.get(base),
        charlie.client.delete(base),
        charlie.client.get(f"{base}/messages"),
        charlie.client.post(f"{base}/messages/{assistant.public_id}/feedback", {"rating": "up"}, format="json"),
    ]
    for response in responses:
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "conversation_not_found"
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assistant.refresh_from_db()
    assert assistant.feedback_rating is None


def test_the_fast_representations_match_the_documented_serializers(alice, conversation):
    from conversations.serializers import (
        ChatCompletionSerializer,
        ConversationSerializer,
        MessageSerializer,
        chat_completion_data,
        conversation_data,
        message_data,
    )

    conversation.refresh_from_db()
    assert conversation_data(conversation) == ConversationSerializer(conversation).data
    for message in conversation.messages.select_related("conversation", "bot"):
        message.feedback_rating = "up" if message.role == "assistant" else None
        assert message_data(message) == MessageSerializer(message).data
        assert chat_completion_data(message) == ChatCompletionSerializer(message).data
