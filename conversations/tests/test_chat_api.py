"""POST /v1/chat/completions in BotHero's own shape, through the test client (streams arrive buffered)."""

import pytest

from bothero.testing.factories import BotFactory, ConversationFactory
from conversations.models import Conversation, Message
from webhooks.models import Event

from .conftest import FAQ_TEXT, parse_sse, streamed_body


def chat(client, **body):
    return client.post("/v1/chat/completions", body, format="json")


def error_of(response) -> dict:
    return response.json()["error"]


# --- the extractive provider (the offline default) ----------------------------------------


def test_it_answers_from_the_bots_knowledge_with_sources(alice, faq_bot):
    response = chat(alice.client, bot_id=faq_bot.public_id, message="When are you open on Saturdays?")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"].startswith("msg_")
    assert body["object"] == "chat.completion"
    assert body["bot_id"] == faq_bot.public_id
    assert body["conversation_id"].startswith("conv_")
    assert body["role"] == "assistant"
    assert body["model"] == "extractive"
    assert "Saturdays the shop opens from 10 AM to 2 PM" in body["content"]
    assert body["sources"]
    assert body["sources"][0]["title"] == "Acme Widgets FAQ"
    assert set(body["sources"][0]) == {"document_id", "title", "chunk_id", "score", "snippet"}
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert body["usage"]["completion_tokens"] > 0
    # Every quoted line is the knowledge base's own text.
    quoted = [line[2:] for line in body["content"].splitlines() if line.startswith("> ")]
    assert quoted
    for line in quoted:
        for sentence in line.split(" … "):
            assert " ".join(sentence.split()) in " ".join(FAQ_TEXT.split())


def test_it_answers_with_the_fallback_message_when_nothing_relevant_is_known(alice, faq_bot):
    response = chat(alice.client, bot_id=faq_bot.public_id, message="What is the capital of Mongolia?")
    assert response.status_code == 200
    body = response.json()
    assert body["content"] == faq_bot.fallback_message
    assert body["sources"] == []
    assert Message.objects.get(public_id=body["id"]).is_fallback is True


def test_it_stores_the_conversation_both_messages_and_their_events(alice, faq_bot):
    response = chat(
        alice.client,
        bot_id=faq_bot.public_id,
        message="Do you ship for free?",
        metadata={"user_id": "customer-42", "plan": "gold"},
    )
    body = response.json()
    conversation = Conversation.objects.get(public_id=body["conversation_id"])
    assert conversation.tenant == alice.tenant
    assert conversation.bot == faq_bot
    assert conversation.end_user_id == "customer-42"
    assert conversation.metadata == {"user_id": "customer-42", "plan": "gold"}
    assert conversation.message_count == 2
    assert conversation.last_message_at is not None
    user, assistant = conversation.messages.order_by("id")
    assert (user.role, user.content) == ("user", "Do you ship for free?")
    assert (assistant.role, assistant.public_id, assistant.status) == ("assistant", body["id"], "complete")
    assert assistant.latency_ms is not None
    assert assistant.sources == body["sources"]
    assert assistant.prompt_tokens == body["usage"]["prompt_tokens"]
    events = (
        Event.objects.filter(tenant=alice.tenant).exclude(type__startswith="bot.").exclude(type__startswith="document.")
    )
    assert [event.type for event in events.order_by("id")] == [
        "conversation.created",
        "message.created",
        "message.created",
    ]
    created = events.get(type="conversation.created")
    assert created.data["id"] == conversation.public_id
    assistant_event = events.filter(type="message.created").order_by("id").last()
    assert assistant_event.data["id"] == body["id"]
    assert assistant_event.data["content"] == body["content"]
    assert assistant_event.data["role"] == "assistant"


def test_it_continues_a_conversation(alice, faq_bot):
    first = chat(alice.client, bot_id=faq_bot.public_id, message="How long does shipping take?").json()
    second = chat(
        alice.client, bot_id=faq_bot.public_id, message="And express?", conversation_id=first["conversation_id"]
    )
    assert second.status_code == 200, second.content
    assert second.json()["conversation_id"] == first["conversation_id"]
    conversation = Conversation.objects.get(public_id=first["conversation_id"])
    assert conversation.message_count == 4
    assert conversation.messages.count() == 4
    assert not Event.objects.filter(type="conversation.created").exclude(data__id=conversation.public_id).exists()


def test_continuing_merges_metadata_sets_a_missing_end_user_and_moves_the_times(alice, faq_bot):
    from accounts.selectors import usage_current

    first = chat(alice.client, bot_id=faq_bot.public_id, message="Hi", metadata={"plan": "gold"}).json()
    started = Conversation.objects.get(public_id=first["conversation_id"])
    assert started.end_user_id == ""
    second = chat(
        alice.client,
        bot_id=faq_bot.public_id,
        message="Do you ship for free?",
        conversation_id=first["conversation_id"],
        metadata={"user_id": "customer-7", "locale": "de"},
    ).json()
    conversation = Conversation.objects.get(pk=started.pk)
    assert conversation.metadata == {"plan": "gold", "user_id": "customer-7", "locale": "de"}
    assert conversation.end_user_id == "customer-7"
    assert conversation.message_count == 4
    assistant = Message.objects.get(public_id=second["id"])
    assert conversation.last_message_at == conversation.updated_at == assistant.created_at
    assert conversation.updated_at > started.updated_at
    user = conversation.messages.filter(role="user").order_by("id").last()
    assert (user.content, user.tenant_id, user.bot_id) == ("Do you ship for free?", alice.tenant.pk, faq_bot.pk)
    assert user.public_id.startswith("msg_")
    assert user.created_at <= assistant.created_at
    usage = usage_current(tenant=alice.tenant)
    assert usage.messages == 2
    assert usage.prompt_tokens == first["usage"]["prompt_tokens"] + second["usage"]["prompt_tokens"]
    assert usage.completion_tokens == first["usage"]["completion_tokens"] + second["usage"]["completion_tokens"]


def test_a_conversation_of_another_bot_is_not_found(alice, faq_bot):
    other_bot = BotFactory(tenant=alice.tenant)
    conversation = ConversationFactory(bot=other_bot)
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Hi", conversation_id=conversation.public_id)
    assert response.status_code == 404
    assert error_of(response)["code"] == "conversation_not_found"
    assert error_of(response)["param"] == "conversation_id"


def test_an_outsider_cannot_chat_with_a_bot_or_continue_a_conversation(alice, faq_bot, charlie, charlie_bot):
    response = chat(charlie.client, bot_id=faq_bot.public_id, message="Hi")
    assert response.status_code == 404
    assert error_of(response)["code"] == "bot_not_found"
    conversation = ConversationFactory(bot=faq_bot)
    response = chat(charlie.client, bot_id=charlie_bot.public_id, message="Hi", conversation_id=conversation.public_id)
    assert response.status_code == 404
    assert error_of(response)["code"] == "conversation_not_found"
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"message": "Hi"}, "missing_param", "bot_id"),
        ({"bot_id": "BOT"}, "missing_param", "message"),
        ({"bot_id": "BOT", "message": "   "}, "invalid_request", "message"),
        ({"bot_id": "BOT", "message": "Hi", "metadata": {"nested": {"a": 1}}}, "invalid_request", "metadata"),
        ({"bot_id": "BOT", "message": "Hi", "stream": "sometimes"}, "invalid_request", "stream"),
    ],
)
def test_it_rejects_invalid_requests(alice, faq_bot, body, code, param):
    body = {key: faq_bot.public_id if value == "BOT" else value for key, value in body.items()}
    response = chat(alice.client, **body)
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == code
    assert error_of(response)["param"] == param


def test_it_limits_the_message_length(alice, faq_bot, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    response = chat(alice.client, bot_id=faq_bot.public_id, message="x" * 51)
    assert response.status_code == 400
    assert error_of(response)["code"] == "message_too_long"
    assert error_of(response)["param"] == "message"
    assert chat(alice.client, bot_id=faq_bot.public_id, message="x" * 50).status_code == 200


def test_a_disabled_bot_does_not_answer(alice, faq_bot):
    faq_bot.status = "disabled"
    faq_bot.save()
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Hi")
    assert response.status_code == 409
    assert error_of(response)["code"] == "bot_disabled"


def test_it_streams_start_deltas_and_the_completed_message(alice, faq_bot):
    response = chat(alice.client, bot_id=faq_bot.public_id, message="How long does a refund take?", stream=True)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["X-Accel-Buffering"] == "no"
    assert response["Cache-Control"] == "no-cache"
    events = parse_sse(streamed_body(response))
    names = [name for name, _ in events]
    assert names[0] == "message.start"
    assert names[-1] == "message.completed"
    assert set(names[1:-1]) == {"message.delta"}
    assert len(names) > 5  # word-sized deltas, not one blob
    start, completed = events[0][1], events[-1][1]
    assert start["id"] == completed["id"]
    assert start["conversation_id"] == completed["conversation_id"]
    assert start["sources"] == completed["sources"]
    assert start["sources"] != []
    assert "".join(data["delta"] for name, data in events if name == "message.delta") == completed["content"]
    assert "5 business days" in completed["content"]
    stored = Message.objects.get(public_id=completed["id"])
    assert stored.status == "complete"
    assert stored.content == completed["content"]


# --- quota --------------------------------------------------------------------------------


def test_it_refuses_messages_past_the_monthly_quota_with_the_reset_time(faq_bot, alice):
    plan = alice.tenant.plan
    plan.max_messages_per_month = 2
    plan.save()
    for _ in range(2):
        assert chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?").status_code == 200
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?")
    assert response.status_code == 429
    error = error_of(response)
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "monthly_quota_exceeded"
    assert "resets at" in error["message"]
    assert response["X-Quota-Reset"].endswith("-01T00:00:00Z")
    assert int(response["Retry-After"]) > 0
    assert Message.objects.filter(role="user").count() == 2
    assert Conversation.objects.count() == 2  # the refused message started none
    from accounts.selectors import usage_current

    assert usage_current(tenant=alice.tenant).messages == 2


def test_a_refused_message_leaves_a_continued_conversation_as_it_was(faq_bot, alice):
    first = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?").json()
    plan = alice.tenant.plan
    plan.max_messages_per_month = 1
    plan.save()
    before = Conversation.objects.get(public_id=first["conversation_id"])

    response = chat(
        alice.client,
        bot_id=faq_bot.public_id,
        message="And shipping?",
        conversation_id=first["conversation_id"],
        metadata={"plan": "gold"},
    )

    assert error_of(response)["code"] == "monthly_quota_exceeded"
    after = Conversation.objects.get(pk=before.pk)
    assert (after.message_count, after.metadata, after.updated_at) == (2, {}, before.updated_at)
    assert after.messages.count() == 2
    assert Event.objects.filter(type="message.created").count() == 2


def test_the_quota_is_counted_per_tenant(faq_bot, alice, charlie, charlie_bot):
    alice.tenant.plan.max_messages_per_month = 1
    alice.tenant.plan.save()
    assert chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?").status_code == 200
    assert chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?").status_code == 429
    charlie.tenant.plan.max_messages_per_month = 1
    charlie.tenant.plan.save()
    # Same plan row for both (Legend), yet Charlie's count starts at zero.
    assert chat(charlie.client, bot_id=charlie_bot.public_id, message="Hi").status_code == 200


# --- idempotency --------------------------------------------------------------------------


def test_a_retried_request_with_the_same_idempotency_key_replays_the_answer(alice, faq_bot):
    body = {"bot_id": faq_bot.public_id, "message": "Refunds?"}
    first = alice.client.post("/v1/chat/completions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = alice.client.post("/v1/chat/completions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert Message.objects.filter(role="assistant").count() == 1


def test_a_streamed_answer_is_not_kept_for_replay(alice, faq_bot):
    body = {"bot_id": faq_bot.public_id, "message": "Refunds?", "stream": True}
    first = alice.client.post("/v1/chat/completions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    streamed_body(first)
    again = alice.client.post("/v1/chat/completions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert again.status_code == 200
    assert parse_sse(streamed_body(again))[-1][0] == "message.completed"
    assert Message.objects.filter(role="assistant").count() == 2


def test_a_failing_embedding_service_is_a_502(alice, faq_bot, llm_stub, settings):
    # The stub has no /embeddings route: the OpenAI-compatible embedder gets a 404 and gives up.
    settings.EMBEDDINGS_PROVIDER = "openai"
    settings.EMBEDDINGS_BASE_URL = llm_stub.base_url
    settings.EMBEDDINGS_MODEL = "missing-embedding-model"
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?")
    assert response.status_code == 502
    assert error_of(response)["code"] == "upstream_error"
