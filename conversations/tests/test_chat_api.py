from conversations.models import Message

from .conftest import FAQ_TEXT, parse_sse, streamed_body


def chat(client, **body):
    return client.post("/v1/chat/completions", body, format="json")


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
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"] > 0
    # Every quoted line is the knowledge base's own text.
    for line in body["content"].splitlines():
        if line.startswith("> "):
            for sentence in line[2:].split(" … "):
                assert " ".join(sentence.split()) in " ".join(FAQ_TEXT.split())


def test_it_streams_start_deltas_and_the_completed_message(alice, faq_bot):
    response = chat(alice.client, bot_id=faq_bot.public_id, message="How long does a refund take?", stream=True)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["X-Accel-Buffering"] == "no"
    events = parse_sse(streamed_body(response))
    names = [name for name, _ in events]
    assert names[0] == "message.start"
    assert names[-1] == "message.completed"
    assert set(names[1:-1]) == {"message.delta"}
    start, completed = events[0][1], events[-1][1]
    assert start["id"] == completed["id"]
    assert start["sources"] == completed["sources"] != []
    assert "".join(data["delta"] for name, data in events if name == "message.delta") == completed["content"]
    stored = Message.objects.get(public_id=completed["id"])
    assert stored.status == "complete"
    assert stored.content == completed["content"]
