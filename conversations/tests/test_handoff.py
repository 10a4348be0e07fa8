"""Human handoff through the public API: status, phrases, the flag, fallbacks in a row, agents' replies, resume, close."""

from __future__ import annotations

import json

import pytest

from bothero.testing.factories import BotFactory, ConversationFactory
from conversations.models import Conversation, Message
from webhooks.models import Event
from webhooks.tests.receiver import Receiver

from .conftest import parse_sse, streamed_body, train

NOTICE = "One moment, a colleague will take over."


@pytest.fixture
def bot(alice, django_capture_on_commit_callbacks):
    bot = BotFactory(
        tenant=alice.tenant,
        handoff={
            "enabled": True,
            "phrases": ["talk to a human", "real person"],
            "after_fallbacks": 2,
            "message": NOTICE,
        },
    )
    train(bot, capture=django_capture_on_commit_callbacks)
    return bot


def chat(client, **body):
    return client.post("/v1/chat/completions", body, format="json")


def events(type: str, conversation_id: str) -> list[dict]:
    return [e.data for e in Event.objects.filter(type=type).order_by("id") if e.data.get("id") == conversation_id]


def test_a_phrase_hands_off_and_the_bot_says_its_notice_verbatim(alice, bot):
    first = chat(alice.client, bot_id=bot.public_id, message="When are you open on Saturdays?").json()
    assert first["conversation_status"] == "bot"
    response = chat(
        alice.client,
        bot_id=bot.public_id,
        message="Can I TALK to a   human, please?",
        conversation_id=first["conversation_id"],
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["content"] == NOTICE
    assert body["model"] == "handoff"
    assert body["sources"] == []
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert body["conversation_status"] == "handoff"
    conversation = alice.client.get(f"/v1/conversations/{first['conversation_id']}").json()
    assert (conversation["status"], conversation["handoff_reason"]) == ("handoff", "phrase")
    assert conversation["status_changed_at"] is not None
    [event] = events("conversation.handoff_requested", first["conversation_id"])
    assert (event["status"], event["handoff_reason"]) == ("handoff", "phrase")


def test_in_handoff_the_bot_is_silent_and_the_customers_messages_are_kept(alice, bot):
    started = chat(alice.client, bot_id=bot.public_id, message="I want a real person.").json()
    conversation_id = started["conversation_id"]
    response = chat(alice.client, bot_id=bot.public_id, message="Hello? Refunds?", conversation_id=conversation_id)
    assert response.status_code == 202
    body = response.json()
    assert body["object"] == "chat.handoff"
    assert body["conversation_status"] == "handoff"
    assert body["conversation_id"] == conversation_id
    history = alice.client.get(f"/v1/conversations/{conversation_id}/messages").json()["data"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "I want a real person."),
        ("assistant", NOTICE),
        ("user", "Hello? Refunds?"),
    ]
    assert history[-1]["id"] == body["user_message_id"]
    # Streamed, the same object is the one event; the OpenAI shape answers it too.
    streamed = chat(alice.client, bot_id=bot.public_id, message="Anyone?", conversation_id=conversation_id, stream=True)
    assert streamed.status_code == 200
    [(name, data)] = parse_sse(streamed_body(streamed))
    assert name == "chat.handoff"
    assert data["conversation_status"] == "handoff"
    openai_shape = chat(
        alice.client,
        model=bot.public_id,
        messages=[{"role": "user", "content": "Still there?"}],
        conversation_id=conversation_id,
    )
    assert openai_shape.status_code == 202
    assert openai_shape.json()["object"] == "chat.handoff"
    assert Message.objects.filter(conversation__public_id=conversation_id, role="assistant").count() == 1


def test_phrases_do_nothing_while_handoff_is_not_enabled(alice, django_capture_on_commit_callbacks):
    bot = BotFactory(tenant=alice.tenant)  # the default: handoff off, default phrases listed
    train(bot, capture=django_capture_on_commit_callbacks)
    body = chat(alice.client, bot_id=bot.public_id, message="Can I talk to a human about refunds?").json()
    assert body["conversation_status"] == "bot"
    assert body["model"] == "extractive"


def test_the_handoff_flag_hands_off_even_when_phrases_are_off(alice, django_capture_on_commit_callbacks):
    bot = BotFactory(tenant=alice.tenant)
    body = chat(alice.client, bot_id=bot.public_id, message="Refund for order 1234", handoff=True).json()
    assert body["conversation_status"] == "handoff"
    assert body["content"] == bot.handoff["message"]
    assert Conversation.objects.get(public_id=body["conversation_id"]).handoff_reason == "requested"


def test_it_hands_off_after_n_fallbacks_in_a_row(alice, bot):
    unanswerable = "What is the capital of Mongolia?"
    first = chat(alice.client, bot_id=bot.public_id, message=unanswerable).json()
    conversation_id = first["conversation_id"]
    assert first["conversation_status"] == "bot"
    # An answer from the knowledge breaks the run.
    answered = chat(
        alice.client, bot_id=bot.public_id, message="Do you ship for free?", conversation_id=conversation_id
    )
    assert answered.json()["conversation_status"] == "bot"
    again = chat(alice.client, bot_id=bot.public_id, message=unanswerable, conversation_id=conversation_id).json()
    assert again["content"] == bot.fallback_message
    assert again["conversation_status"] == "bot"
    third = chat(
        alice.client, bot_id=bot.public_id, message="Who won the 1998 World Cup?", conversation_id=conversation_id
    )
    assert third.json()["content"] == bot.fallback_message
    assert third.json()["conversation_status"] == "handoff"
    assert Conversation.objects.get(public_id=conversation_id).handoff_reason == "fallbacks"
    assert (
        chat(alice.client, bot_id=bot.public_id, message="Hello?", conversation_id=conversation_id).status_code == 202
    )


def test_an_agent_replies_and_the_reply_is_in_the_history_and_the_webhooks(alice, bot):
    conversation_id = chat(alice.client, bot_id=bot.public_id, message="Do you ship for free?").json()[
        "conversation_id"
    ]
    response = alice.client.post(
        f"/v1/conversations/{conversation_id}/messages", {"role": "agent", "content": "Hi, Sam here."}, format="json"
    )
    assert response.status_code == 201, response.content
    message = response.json()
    assert (message["role"], message["content"], message["object"]) == ("agent", "Hi, Sam here.", "message")
    # The agent took the conversation over from the bot.
    conversation = alice.client.get(f"/v1/conversations/{conversation_id}").json()
    assert (conversation["status"], conversation["handoff_reason"], conversation["message_count"]) == (
        "handoff",
        "api",
        3,
    )
    history = alice.client.get(f"/v1/conversations/{conversation_id}/messages").json()["data"]
    assert history[-1]["id"] == message["id"]
    created = [e.data for e in Event.objects.filter(type="message.created").order_by("id")]
    assert created[-1]["id"] == message["id"]
    assert created[-1]["role"] == "agent"
    assert len(events("conversation.handoff_requested", conversation_id)) == 1


@pytest.mark.parametrize(
    "body", [{"role": "assistant", "content": "Hi"}, {"role": "agent", "content": "   "}, {"content": "Hi"}]
)
def test_only_agents_post_messages_and_not_empty_ones(alice, bot, body):
    conversation = ConversationFactory(bot=bot)
    response = alice.client.post(f"/v1/conversations/{conversation.public_id}/messages", body, format="json")
    assert response.status_code == 400


def test_handoff_and_resume_through_the_api(alice, bot):
    conversation_id = chat(alice.client, bot_id=bot.public_id, message="Opening hours?").json()["conversation_id"]
    handed = alice.client.post(f"/v1/conversations/{conversation_id}/handoff")
    assert handed.status_code == 200
    assert (handed.json()["status"], handed.json()["handoff_reason"]) == ("handoff", "api")
    assert alice.client.post(f"/v1/conversations/{conversation_id}/handoff").status_code == 200  # no change, no event
    assert len(events("conversation.handoff_requested", conversation_id)) == 1
    assert chat(alice.client, bot_id=bot.public_id, message="Hi?", conversation_id=conversation_id).status_code == 202
    resumed = alice.client.post(f"/v1/conversations/{conversation_id}/resume")
    assert resumed.status_code == 200
    assert (resumed.json()["status"], resumed.json()["handoff_reason"]) == ("bot", "")
    assert len(events("conversation.resumed", conversation_id)) == 1
    answer = chat(alice.client, bot_id=bot.public_id, message="Refunds?", conversation_id=conversation_id)
    assert answer.status_code == 200
    assert answer.json()["conversation_status"] == "bot"
    again = alice.client.post(f"/v1/conversations/{conversation_id}/resume")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conversation_not_in_handoff"


def test_a_closed_conversation_takes_no_more_messages(alice, bot):
    conversation_id = chat(alice.client, bot_id=bot.public_id, message="Opening hours?").json()["conversation_id"]
    closed = alice.client.post(f"/v1/conversations/{conversation_id}/close")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert len(events("conversation.closed", conversation_id)) == 1
    refused = [
        chat(alice.client, bot_id=bot.public_id, message="Hello?", conversation_id=conversation_id),
        alice.client.post(
            f"/v1/conversations/{conversation_id}/messages", {"role": "agent", "content": "Hi"}, format="json"
        ),
        alice.client.post(f"/v1/conversations/{conversation_id}/handoff"),
        alice.client.post(f"/v1/conversations/{conversation_id}/resume"),
    ]
    for response in refused:
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "conversation_closed"
    assert Message.objects.filter(conversation__public_id=conversation_id).count() == 2


def test_conversations_are_filtered_by_status_in_the_list_and_the_export(alice, bot):
    with_bot = ConversationFactory(bot=bot)
    handed = ConversationFactory(bot=bot, status="handoff")
    closed = ConversationFactory(bot=bot, status="closed")
    for status, conversation in (("bot", with_bot), ("handoff", handed), ("closed", closed)):
        listed = alice.client.get("/v1/conversations", {"status": status}).json()["data"]
        assert [item["id"] for item in listed] == [conversation.public_id]
    Message.objects.create(
        tenant=alice.tenant, bot=bot, conversation=handed, role="user", content="Waiting for a person"
    )
    exported = streamed_body(alice.client.get("/v1/conversations/export", {"status": "handoff"})).decode()
    assert exported.count("\n") == 1
    assert '"status":"handoff"' in exported
    invalid = alice.client.get("/v1/conversations", {"status": "waiting"})
    assert invalid.status_code == 400
    assert invalid.json()["error"]["param"] == "status"


def test_another_tenants_conversation_is_a_404_everywhere(alice, charlie, bot):
    conversation = ConversationFactory(bot=bot)
    for path, body in (
        ("handoff", None),
        ("resume", None),
        ("close", None),
        ("messages", {"role": "agent", "content": "Hi"}),
    ):
        response = charlie.client.post(f"/v1/conversations/{conversation.public_id}/{path}", body, format="json")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "conversation_not_found"
    assert charlie.client.get(f"/v1/conversations/{conversation.public_id}/events").status_code == 404
    conversation.refresh_from_db()
    assert conversation.status == "bot"
    assert not conversation.messages.exists()


def test_the_handoff_events_and_agent_messages_reach_a_webhook_receiver(
    alice, bot, settings, django_capture_on_commit_callbacks
):
    settings.ALLOW_PRIVATE_URLS = True
    with Receiver() as receiver:
        subscribed = alice.client.post(
            "/v1/webhooks",
            {
                "url": f"{receiver.url}/hooks",
                "events": [
                    "conversation.handoff_requested",
                    "conversation.resumed",
                    "conversation.closed",
                    "message.created",
                ],
            },
            format="json",
        )
        assert subscribed.status_code == 201, subscribed.content
        conversation = ConversationFactory(bot=bot)
        base = f"/v1/conversations/{conversation.public_id}"
        with django_capture_on_commit_callbacks(execute=True):
            alice.client.post(f"{base}/handoff")
        with django_capture_on_commit_callbacks(execute=True):
            alice.client.post(f"{base}/messages", {"role": "agent", "content": "Sam here."}, format="json")
        with django_capture_on_commit_callbacks(execute=True):
            alice.client.post(f"{base}/resume")
        with django_capture_on_commit_callbacks(execute=True):
            alice.client.post(f"{base}/close")
        bodies = [json.loads(request.body) for request in receiver.wait_for(4)]
    assert [(body["type"], body["data"].get("role") or body["data"]["status"]) for body in bodies] == [
        ("conversation.handoff_requested", "handoff"),
        ("message.created", "agent"),
        ("conversation.resumed", "bot"),
        ("conversation.closed", "closed"),
    ]
    assert bodies[1]["data"]["content"] == "Sam here."


def test_bot_handoff_settings_are_validated_and_merged(alice, bot):
    patched = alice.client.patch(f"/v1/bots/{bot.public_id}", {"handoff": {"after_fallbacks": 3}}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["handoff"]["after_fallbacks"] == 3
    assert patched.json()["handoff"]["message"] == NOTICE
    bad = alice.client.patch(f"/v1/bots/{bot.public_id}", {"handoff": {"after_fallbacks": 0}}, format="json")
    assert bad.status_code == 400
    created = alice.client.post("/v1/bots", {"name": "New"}, format="json").json()
    assert created["handoff"]["enabled"] is False
    assert "talk to a human" in created["handoff"]["phrases"]
