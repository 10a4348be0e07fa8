"""The `openai` provider against a real OpenAI-compatible server on loopback (conversations.testing.llm_server)."""

import re

from accounts.selectors import usage_current
from bothero.testing.factories import ConversationFactory, MessageFactory
from conversations.models import Message
from conversations.prompt import MESSAGE_OVERHEAD_TOKENS, NO_PASSAGES, count_tokens

from .conftest import parse_sse, streamed_body


def chat(client, **body):
    return client.post("/v1/chat/completions", body, format="json")


def test_it_answers_with_the_models_text_and_reported_usage(alice, faq_bot, openai_provider):
    openai_provider.reply = "We open at 10 AM on Saturdays [chk_x]."
    response = chat(alice.client, bot_id=faq_bot.public_id, message="When do you open on Saturday?")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["content"] == "We open at 10 AM on Saturdays [chk_x]."
    assert body["model"] == faq_bot.model
    sent = openai_provider.requests[-1]
    usage = {"prompt_tokens": sum(len(m["content"].split()) for m in sent["messages"]), "completion_tokens": 8}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["usage"] == usage  # the stub's own count, passed through
    assert body["sources"]
    stored = Message.objects.get(public_id=body["id"])
    assert (stored.prompt_tokens, stored.completion_tokens) == (usage["prompt_tokens"], 8)
    assert stored.is_fallback is False


def test_the_prompt_holds_instructions_numbered_passages_and_the_question(alice, faq_bot, openai_provider):
    response = chat(alice.client, bot_id=faq_bot.public_id, message="How much is express shipping?", stream=True)
    start = parse_sse(streamed_body(response))[0][1]
    sent = openai_provider.requests[-1]
    assert sent["model"] == faq_bot.model
    assert sent["temperature"] == faq_bot.temperature
    assert sent["max_tokens"] == faq_bot.max_tokens
    system, question = sent["messages"][0], sent["messages"][-1]
    assert system["role"] == "system"
    assert system["content"].startswith(faq_bot.instructions)
    assert f'reply exactly with: "{faq_bot.fallback_message}"' in system["content"]
    assert "Answer only from the numbered knowledge passages below" in system["content"]
    # The passages given to the model (message.start's sources), numbered in that order.
    assert start["sources"]
    for number, source in enumerate(start["sources"], 1):
        assert f"[{number}] {source['title']}" in system["content"]
        assert source["snippet"][:60] in " ".join(system["content"].split())
    assert f"[{len(start['sources']) + 1}]" not in system["content"]
    assert "Express shipping arrives the next business day" in system["content"]
    assert question == {"role": "user", "content": "How much is express shipping?"}


def test_llm_model_forces_one_model_for_every_bot(alice, faq_bot, openai_provider, settings):
    settings.LLM_MODEL = "llama-3.1-8b"
    body = chat(alice.client, bot_id=faq_bot.public_id, message="Hi").json()
    assert openai_provider.requests[-1]["model"] == "llama-3.1-8b"
    assert body["model"] == "llama-3.1-8b"


def test_it_counts_tokens_itself_when_the_server_reports_no_usage(alice, faq_bot, openai_provider):
    openai_provider.report_usage = False
    openai_provider.reply = "Refunds are paid within 5 business days."
    body = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?").json()
    sent = openai_provider.requests[-1]["messages"]
    expected_prompt = sum(count_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in sent)
    assert body["usage"]["prompt_tokens"] == expected_prompt
    assert body["usage"]["completion_tokens"] == count_tokens("Refunds are paid within 5 business days.")


def test_the_models_fallback_answer_is_marked_as_fallback(alice, faq_bot, openai_provider):
    openai_provider.reply = f'"{faq_bot.fallback_message}"'
    body = chat(alice.client, bot_id=faq_bot.public_id, message="Who won the 1998 World Cup?").json()
    assert Message.objects.get(public_id=body["id"]).is_fallback is True


def test_an_upstream_error_is_a_502_envelope_and_a_failed_message(alice, faq_bot, openai_provider):
    openai_provider.fail(500)
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?")
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "upstream_error")
    assert error["request_id"] == response["X-Request-Id"]
    assistant = Message.objects.get(role="assistant")
    assert (assistant.status, assistant.content) == ("failed", "")
    assert Message.objects.filter(role="user", content="Refunds?").exists()
    assert usage_current(tenant=alice.tenant).messages == 0  # an unanswered question is not charged


def test_it_retries_a_rate_limited_or_failing_upstream_with_backoff(alice, faq_bot, openai_provider, settings):
    settings.LLM_MAX_RETRIES = 2
    openai_provider.fail(429, retry_after_ms=20)
    openai_provider.fail(503, retry_after_ms=20)
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?")
    assert response.status_code == 200, response.content
    assert len(openai_provider.requests) == 3


def test_it_gives_up_after_the_configured_retries(alice, faq_bot, openai_provider, settings):
    settings.LLM_MAX_RETRIES = 1
    openai_provider.fail(503, times=2, retry_after_ms=20)
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?")
    assert response.status_code == 502
    assert len(openai_provider.requests) == 2


def test_a_silent_upstream_is_a_504(alice, faq_bot, openai_provider, settings):
    settings.LLM_TIMEOUT_SECONDS = 0.3
    openai_provider.stall(5)
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert Message.objects.get(role="assistant").status == "failed"


def test_an_unreachable_upstream_is_a_502(alice, faq_bot, openai_provider, settings):
    openai_provider.stop()
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


# --- streaming ----------------------------------------------------------------------------


def test_it_streams_the_models_tokens(alice, faq_bot, openai_provider):
    openai_provider.reply = "Refunds take five business days."
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?", stream=True)
    events = parse_sse(streamed_body(response))
    deltas = [data["delta"] for name, data in events if name == "message.delta"]
    assert deltas == ["Refunds", " take", " five", " business", " days."]
    assert openai_provider.requests[-1]["stream"] is True
    completed = events[-1][1]
    assert events[-1][0] == "message.completed"
    assert completed["content"] == "Refunds take five business days."
    assert completed["usage"]["completion_tokens"] == 5  # reported by the server in its usage chunk


def test_an_upstream_error_while_streaming_is_an_error_event(alice, faq_bot, openai_provider):
    openai_provider.fail(500)
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?", stream=True)
    assert response.status_code == 200  # the stream had started: its ids and sources were sent
    events = parse_sse(streamed_body(response))
    assert [name for name, _ in events] == ["message.start", "error"]
    assert events[1][1]["error"]["code"] == "upstream_error"
    assert events[1][1]["error"]["request_id"] == response["X-Request-Id"]
    assert Message.objects.get(public_id=events[0][1]["id"]).status == "failed"
    assert usage_current(tenant=alice.tenant).messages == 0


def test_a_stream_that_stalls_midway_keeps_the_partial_answer_as_incomplete(alice, faq_bot, openai_provider, settings):
    settings.LLM_TIMEOUT_SECONDS = 0.3
    openai_provider.reply = "one two three four five"
    openai_provider.stall(5, after_tokens=2)
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?", stream=True)
    events = parse_sse(streamed_body(response))
    assert [name for name, _ in events] == ["message.start", "message.delta", "message.delta", "error"]
    assert events[-1][1]["error"]["code"] == "upstream_timeout"
    stored = Message.objects.get(public_id=events[0][1]["id"])
    assert (stored.status, stored.content) == ("incomplete", "one two")


def test_it_sends_heartbeats_while_the_model_is_silent(alice, faq_bot, openai_provider, settings):
    settings.CHAT_HEARTBEAT_SECONDS = 0.05
    openai_provider.delay = 0.4
    response = chat(alice.client, bot_id=faq_bot.public_id, message="Refunds?", stream=True)
    events = parse_sse(streamed_body(response))
    names = [name for name, _ in events]
    first_delta = names.index("message.delta")
    assert names[0] == "message.start"
    assert names[1:first_delta].count("comment") >= 3
    assert names[-1] == "message.completed"


# --- history ----------------------------------------------------------------------------


def test_history_is_the_newest_messages_that_fit_the_token_budget(alice, faq_bot, openai_provider, settings):
    settings.CHAT_HISTORY_TOKEN_BUDGET = 120
    conversation = ConversationFactory(bot=faq_bot)
    texts = [f"Message number {index}: " + "words " * (5 + 3 * index) for index in range(12)]
    for index, text in enumerate(texts):
        MessageFactory(conversation=conversation, role="user" if index % 2 == 0 else "assistant", content=text)
    MessageFactory(conversation=conversation, role="assistant", content="half an answ", status="incomplete")
    response = chat(alice.client, bot_id=faq_bot.public_id, message="And now?", conversation_id=conversation.public_id)
    assert response.status_code == 200, response.content
    sent = openai_provider.requests[-1]["messages"]
    history = [m["content"] for m in sent[1:-1]]
    costs = [count_tokens(text) + MESSAGE_OVERHEAD_TOKENS for text in texts]
    # The newest messages, as many as fit; the next older one would not have.
    kept = len(history)
    assert 0 < kept < len(texts)
    assert history == texts[-kept:]
    assert sum(costs[-kept:]) <= 120 < sum(costs[-kept - 1 :])
    assert "half an answ" not in history
    assert sent[-1]["content"] == "And now?"


def cite(heading: str, text: str):
    """A stub reply that cites, by its number in the prompt, the passage under `heading`."""

    def reply(body: dict) -> str:
        system = body["messages"][0]["content"]
        (number,) = re.findall(rf"^\[(\d+)\] Acme Widgets FAQ — {heading}$", system, flags=re.MULTILINE)
        return text.format(number=number)

    return reply


def test_the_answers_sources_are_the_passages_it_cites_and_its_markers_number_them(
    alice, faq_bot, openai_provider, settings
):
    # Every retrieved passage goes to the model, however improbable: this is about the citation numbers.
    settings.CHAT_ANSWER_MIN_SCORE = 0.0
    openai_provider.reply = cite("Shipping", "Express shipping costs $14.99 [{number}].")
    body = chat(alice.client, bot_id=faq_bot.public_id, message="How long do shipping and refunds take?").json()

    sent = openai_provider.requests[-1]["messages"][0]["content"]
    assert re.search(r"^\[2\] ", sent, flags=re.MULTILINE), "the model was given several passages"
    assert body["content"] == "Express shipping costs $14.99 [1]."
    (source,) = body["sources"]
    assert source["snippet"].startswith("Standard shipping takes 3 to 5 business days")
    assert Message.objects.get(public_id=body["id"]).sources == body["sources"]


def test_a_streamed_answers_markers_are_renumbered_and_its_sources_are_the_cited_ones(
    alice, faq_bot, openai_provider, settings
):
    settings.CHAT_ANSWER_MIN_SCORE = 0.0  # every retrieved passage goes to the model (see above)
    openai_provider.reply = cite("Shipping", "Express costs $14.99 [{number}], and [9] is no passage.")
    response = chat(
        alice.client, bot_id=faq_bot.public_id, message="How long do shipping and refunds take?", stream=True
    )

    events = parse_sse(streamed_body(response))
    start, completed = events[0][1], events[-1][1]
    text = "".join(data["delta"] for event, data in events if event == "message.delta")
    assert text == completed["content"] == "Express costs $14.99 [1], and [9] is no passage."
    assert len(start["sources"]) > 1
    assert [source["chunk_id"] for source in completed["sources"]] == [
        source["chunk_id"] for source in start["sources"] if source["snippet"].startswith("Standard shipping")
    ]


def test_an_answer_without_markers_keeps_every_passage_it_was_given(alice, faq_bot, openai_provider):
    openai_provider.reply = "Express shipping costs $14.99."
    response = chat(alice.client, bot_id=faq_bot.public_id, message="How much is express shipping?", stream=True)
    events = parse_sse(streamed_body(response))
    assert events[-1][1]["sources"] == events[0][1]["sources"] != []


def test_the_fallback_answer_has_no_sources(alice, faq_bot, openai_provider):
    openai_provider.reply = faq_bot.fallback_message
    body = chat(alice.client, bot_id=faq_bot.public_id, message="How much is express shipping?").json()
    assert body["sources"] == []


def test_a_question_the_knowledge_cannot_answer_reaches_the_model_without_passages(alice, faq_bot, openai_provider):
    openai_provider.reply = faq_bot.fallback_message
    body = chat(alice.client, bot_id=faq_bot.public_id, message="Who won the 1998 World Cup?").json()
    system = openai_provider.requests[-1]["messages"][0]["content"]
    assert system.endswith(NO_PASSAGES)
    assert (body["content"], body["sources"]) == (faq_bot.fallback_message, [])


def test_a_follow_up_reaches_the_model_with_the_history_and_the_passages_of_the_question_it_continues(
    alice, faq_bot, openai_provider
):
    first = chat(alice.client, bot_id=faq_bot.public_id, message="How much is express shipping?").json()
    openai_provider.reply = "Standard shipping costs $4.99."
    chat(
        alice.client,
        bot_id=faq_bot.public_id,
        message="And the standard one?",
        conversation_id=first["conversation_id"],
    )

    messages = openai_provider.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "How much is express shipping?"
    assert "Standard shipping takes 3 to 5 business days and costs $4.99." in messages[0]["content"]
