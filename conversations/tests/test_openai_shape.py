"""OpenAI's Chat Completions shape on /v1/chat/completions, and /v1/models, through the test client."""

import pytest

from bothero.testing.factories import BotFactory
from conversations.models import Conversation, Message

from .conftest import parse_sse, streamed_body


def openai_chat(client, **body):
    return client.post("/v1/chat/completions", body, format="json")


def test_it_answers_in_openais_shape(alice, faq_bot):
    response = openai_chat(
        alice.client, model=faq_bot.public_id, messages=[{"role": "user", "content": "Do you ship for free?"}]
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "extractive"  # what answered: the offline provider, as in the native shape
    assert isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert "Orders over $50 ship for free" in choice["message"]["content"]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    message = Message.objects.get(public_id=body["id"])
    assert message.conversation.public_id == body["conversation_id"]


def test_a_system_message_without_content_is_accepted(alice, faq_bot):
    # OpenAI allows it; it was a 500 (KeyError on "content") until schemathesis sent one.
    response = openai_chat(
        alice.client,
        model=faq_bot.public_id,
        messages=[{"role": "system"}, {"role": "user", "content": "Do you ship for free?"}],
    )
    assert response.status_code == 200, response.content


def test_the_clients_messages_are_the_history_and_its_system_message_extra_instructions(
    alice, faq_bot, openai_provider
):
    messages = [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "Hi, I ordered a widget."},
        {"role": "assistant", "content": "Great, how can I help?"},
        {"role": "user", "content": [{"type": "text", "text": "Can I return it?"}]},
    ]
    response = openai_chat(alice.client, model=faq_bot.public_id, messages=messages, user="customer-7")
    assert response.status_code == 200, response.content
    sent = openai_provider.requests[-1]["messages"]
    assert sent[0]["role"] == "system"
    assert sent[0]["content"].startswith(faq_bot.instructions)
    assert "Answer in one sentence." in sent[0]["content"]
    assert sent[1:] == [
        {"role": "user", "content": "Hi, I ordered a widget."},
        {"role": "assistant", "content": "Great, how can I help?"},
        {"role": "user", "content": "Can I return it?"},
    ]
    conversation = Conversation.objects.get(public_id=response.json()["conversation_id"])
    assert conversation.end_user_id == "customer-7"
    # Only the new turn is stored: the client owns the earlier messages it sent.
    assert list(conversation.messages.values_list("role", flat=True).order_by("id")) == ["user", "assistant"]


def test_request_temperature_and_max_tokens_override_the_bots(alice, faq_bot, openai_provider):
    openai_chat(
        alice.client,
        model=faq_bot.public_id,
        messages=[{"role": "user", "content": "Hi"}],
        temperature=0.9,
        max_tokens=33,
    )
    sent = openai_provider.requests[-1]
    assert (sent["temperature"], sent["max_tokens"]) == (0.9, 33)


def test_it_streams_chunks_and_done(alice, faq_bot, openai_provider):
    openai_provider.reply = "Yes, within 30 days."
    response = openai_chat(
        alice.client,
        model=faq_bot.public_id,
        messages=[{"role": "user", "content": "Can I return it?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    frames = [data for _, data in parse_sse(streamed_body(response))]
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert [chunk["model"] for chunk in chunks] == [faq_bot.model] * len(chunks)  # what answered
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Yes, within 30 days."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_an_error_mid_stream_is_an_openai_error_frame(alice, faq_bot, openai_provider):
    openai_provider.fail(502)
    response = openai_chat(
        alice.client, model=faq_bot.public_id, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    frames = [data for _, data in parse_sse(streamed_body(response))]
    assert frames[-1]["error"]["code"] == "upstream_error"
    assert "[DONE]" not in frames


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "assistant", "content": "Hello"}], "messages"),
        ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "messages"),
        ([{"role": "wizard", "content": "Hi"}], "messages.0.role"),
        ([{"role": "user", "content": 42}], "messages.0.content"),
    ],
)
def test_it_rejects_malformed_openai_requests(alice, faq_bot, messages, param):
    response = openai_chat(alice.client, model=faq_bot.public_id, messages=messages)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param


def test_an_unknown_model_is_a_404_about_the_model(alice, charlie, faq_bot):
    response = openai_chat(charlie.client, model=faq_bot.public_id, messages=[{"role": "user", "content": "Hi"}])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bot_not_found"
    assert response.json()["error"]["param"] == "model"


def test_models_lists_the_tenants_bots(alice, faq_bot, charlie_bot):
    other = BotFactory(tenant=alice.tenant, name="Sales")
    response = alice.client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == [other.public_id, faq_bot.public_id]
    assert body["data"][0] == {
        "id": other.public_id,
        "object": "model",
        "created": int(other.created_at.timestamp()),
        "owned_by": alice.tenant.public_id,
        "name": "Sales",
    }


def test_a_model_is_one_bot_and_an_outsider_gets_404(alice, faq_bot, charlie):
    assert alice.client.get(f"/v1/models/{faq_bot.public_id}").json()["id"] == faq_bot.public_id
    response = charlie.client.get(f"/v1/models/{faq_bot.public_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bot_not_found"
