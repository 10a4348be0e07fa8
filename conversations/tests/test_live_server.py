"""The chat engine served by a real uvicorn (ASGI) talking to a real OpenAI-compatible stub on loopback.

Streaming as it happens on the wire, a client that hangs up, the official
OpenAI SDK (plain, streaming, async) and the realtime websocket.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
import websockets

from bothero.testing.factories import BotFactory
from bothero.testing.processes import uvicorn_server
from conftest import make_actor
from conversations.models import Message
from conversations.testing.llm_server import LLMStub, default_reply

from .conftest import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_stub():
    with LLMStub() as stub:
        yield stub


@pytest.fixture(scope="module")
def live_url(django_db_setup, django_db_blocker, live_stub):
    with (
        django_db_blocker.unblock(),
        uvicorn_server(
            LLM_PROVIDER="openai",
            LLM_BASE_URL=live_stub.base_url,
            LLM_API_KEY="sk-test",
            LLM_MODEL="",
            LLM_MAX_RETRIES="0",
            LLM_TIMEOUT_SECONDS="10",
        ) as url,
    ):
        yield url


@pytest.fixture
def stub(live_stub):
    """The module's stub, back to plain behaviour for each test."""
    live_stub.reply = default_reply
    live_stub.delay = 0.0
    live_stub.token_delay = 0.0
    live_stub.report_usage = True
    with live_stub._lock:
        live_stub._actions.clear()
        live_stub._stats.requests.clear()
        live_stub._stats.disconnects = 0
        live_stub._stats.completed_streams = 0
    return live_stub


@pytest.fixture
def actor(transactional_db):
    return make_actor()


@pytest.fixture
def bot(actor):
    bot = BotFactory(tenant=actor.tenant, name="Acme support")
    train(bot)
    return bot


def headers(actor) -> dict:
    return {"Authorization": f"Bearer {actor.key}"}


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def read_sse(response):
    """(event, data, seconds since start) for each SSE frame as it arrives."""
    started = time.perf_counter()
    event, data = None, []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield event, json.loads("\n".join(data)), time.perf_counter() - started
            event, data = None, []


def test_message_start_arrives_before_the_first_token(live_url, stub, actor, bot):
    stub.delay = 0.6  # the model "thinks" before its first token
    stub.reply = "Refunds take five business days."
    body = {"bot_id": bot.public_id, "message": "How long do refunds take?", "stream": True}
    with httpx.stream("POST", f"{live_url}/v1/chat/completions", json=body, headers=headers(actor), timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-accel-buffering"] == "no"
        assert r.headers["x-request-id"].startswith("req_")
        events = list(read_sse(r))
    names = [name for name, _, _ in events]
    assert names[0] == "message.start"
    assert names[-1] == "message.completed"
    start_at = events[0][2]
    first_delta_at = events[1][2]
    assert first_delta_at - start_at > 0.4, "message.start must not wait for the model"
    assert events[0][1]["sources"]
    assert "".join(d["delta"] for n, d, _ in events if n == "message.delta") == "Refunds take five business days."
    stored = Message.objects.get(public_id=events[0][1]["id"])
    assert stored.status == "complete"
    assert stored.latency_ms >= 600


def test_a_client_that_hangs_up_cancels_the_upstream_call_and_keeps_the_partial_answer(live_url, stub, actor, bot):
    stub.reply = " ".join(f"word{index}" for index in range(40))
    stub.token_delay = 0.15
    body = {"bot_id": bot.public_id, "message": "Tell me everything.", "stream": True}
    with httpx.stream("POST", f"{live_url}/v1/chat/completions", json=body, headers=headers(actor), timeout=30) as r:
        events = read_sse(r)
        name, start, _ = next(events)
        assert name == "message.start"
        name, _, _ = next(events)
        assert name == "message.delta"
    # The connection is closed: the platform must close its upstream connection too...
    assert stub.wait_for_disconnect(timeout=5), "the upstream stream was not cancelled"
    assert stub.completed_streams == 0
    # ...and store what was generated so far as incomplete.
    stored = wait_for(lambda: Message.objects.filter(public_id=start["id"]).first())
    assert stored.status == "incomplete"
    assert stored.content.startswith("word0")
    assert 0 < len(stored.content.split()) < 40


def test_the_openai_sdk_works_plain(live_url, stub, actor, bot):
    stub.reply = "We ship for free over $50."
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key=actor.key, max_retries=0)
    completion = client.chat.completions.create(
        model=bot.public_id, messages=[{"role": "user", "content": "Is shipping free?"}]
    )
    assert completion.choices[0].message.content == "We ship for free over $50."
    assert completion.choices[0].message.role == "assistant"
    assert completion.model == bot.model  # what answered (the stub serves whatever model it is asked for)
    assert completion.usage.completion_tokens == 6
    assert completion.id.startswith("msg_")
    models = client.models.list()
    assert [model.id for model in models.data] == [bot.public_id]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="bot_missing", messages=[{"role": "user", "content": "Hi"}])


def test_the_openai_sdk_works_streaming(live_url, stub, actor, bot):
    stub.reply = "Yes, within thirty days."
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key=actor.key, max_retries=0)
    stream = client.chat.completions.create(
        model=bot.public_id,
        messages=[{"role": "user", "content": "Can I return a widget?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Yes, within thirty days."
    assert chunks[-1].usage.completion_tokens == 4
    assert {chunk.model for chunk in chunks} == {bot.model}


def test_the_openai_sdk_works_async(live_url, stub, actor, bot):
    stub.reply = "Open nine to six."

    async def ask():
        client = openai.AsyncOpenAI(base_url=f"{live_url}/v1", api_key=actor.key, max_retries=0)
        plain = await client.chat.completions.create(
            model=bot.public_id, messages=[{"role": "user", "content": "Hours?"}]
        )
        stream = await client.chat.completions.create(
            model=bot.public_id, messages=[{"role": "user", "content": "Hours?"}], stream=True
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        await client.close()
        return plain.choices[0].message.content, "".join(parts)

    assert asyncio.run(ask()) == ("Open nine to six.", "Open nine to six.")


def test_the_openai_sdk_sees_upstream_failures_as_api_errors(live_url, stub, actor, bot):
    stub.fail(500)
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key=actor.key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=bot.public_id, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_error"


# --- the realtime websocket ----------------------------------------------------------------


def ws_url(live_url: str) -> str:
    return live_url.replace("http://", "ws://") + "/v1/realtime"


async def receive_until(ws, final_types=("message.completed", "error")) -> list[dict]:
    received = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
        received.append(event)
        if event["type"] in final_types:
            return received


def test_the_websocket_streams_the_same_events_with_header_auth(live_url, stub, actor, bot):
    stub.reply = "Closed on Sundays."

    async def talk():
        async with websockets.connect(ws_url(live_url), additional_headers=headers(actor)) as ws:
            session = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "chat", "bot_id": bot.public_id, "message": "Open on Sunday?"}))
            first = await receive_until(ws)
            await ws.send(
                json.dumps(
                    {
                        "type": "chat",
                        "bot_id": bot.public_id,
                        "message": "And Saturday?",
                        "conversation_id": first[0]["data"]["conversation_id"],
                    }
                )
            )
            second = await receive_until(ws)
            await ws.send(json.dumps({"type": "ping"}))
            pong = json.loads(await ws.recv())
            return session, first, second, pong

    session, first, second, pong = asyncio.run(talk())
    assert session == {"type": "session.created", "data": {"tenant_id": actor.tenant.public_id}}
    types = [event["type"] for event in first]
    assert types[0] == "message.start"
    assert types[-1] == "message.completed"
    assert set(types[1:-1]) == {"message.delta"}
    assert "".join(e["data"]["delta"] for e in first if e["type"] == "message.delta") == "Closed on Sundays."
    assert first[-1]["data"]["object"] == "chat.completion"
    assert first[-1]["data"]["sources"] == first[0]["data"]["sources"]
    assert second[-1]["data"]["conversation_id"] == first[-1]["data"]["conversation_id"]
    assert pong == {"type": "pong"}
    assert Message.objects.filter(conversation__public_id=first[0]["data"]["conversation_id"]).count() == 4


def test_the_websocket_accepts_the_key_in_the_first_message_and_reports_errors(live_url, stub, actor, bot):
    async def talk():
        async with websockets.connect(ws_url(live_url)) as ws:
            await ws.send(json.dumps({"type": "auth", "api_key": actor.key}))
            session = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "chat", "bot_id": "bot_nope", "message": "Hi"}))
            missing = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "chat", "bot_id": bot.public_id}))
            invalid = json.loads(await ws.recv())
            await ws.send("not json")
            garbage = json.loads(await ws.recv())
            return session, missing, invalid, garbage

    session, missing, invalid, garbage = asyncio.run(talk())
    assert session["type"] == "session.created"
    assert missing["type"] == "error"
    assert missing["data"]["error"]["code"] == "bot_not_found"
    assert missing["data"]["error"]["request_id"].startswith("req_")
    assert (invalid["data"]["error"]["code"], invalid["data"]["error"]["param"]) == ("missing_param", "message")
    assert garbage["data"]["error"]["code"] == "invalid_json"


def test_the_websocket_refuses_a_bad_key_and_an_unauthenticated_chat(live_url, stub, actor, bot):
    async def talk(first_message, extra_headers=None):
        async with websockets.connect(ws_url(live_url), additional_headers=extra_headers or {}) as ws:
            if first_message is not None:
                await ws.send(json.dumps(first_message))
            error = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return error, closed.value.rcvd.code

    error, code = asyncio.run(talk({"type": "auth", "api_key": "bh_live_wrong"}))
    assert (error["data"]["error"]["code"], code) == ("invalid_api_key", 4401)
    error, code = asyncio.run(talk({"type": "chat", "bot_id": bot.public_id, "message": "Hi"}))
    assert (error["data"]["error"]["code"], code) == ("missing_credentials", 4401)
    error, code = asyncio.run(talk(None, {"Authorization": "Bearer bh_live_wrong"}))
    assert (error["data"]["error"]["code"], code) == ("invalid_api_key", 4401)
    free = make_actor("free")
    error, code = asyncio.run(talk({"type": "auth", "api_key": free.key}))
    assert (error["data"]["error"]["code"], code) == ("plan_upgrade_required", 4403)


def test_closing_the_websocket_mid_answer_keeps_it_as_incomplete(live_url, stub, actor, bot):
    stub.reply = " ".join(f"word{index}" for index in range(40))
    stub.token_delay = 0.15

    async def talk():
        async with websockets.connect(ws_url(live_url), additional_headers=headers(actor)) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "chat", "bot_id": bot.public_id, "message": "Everything?"}))
            start = json.loads(await ws.recv())
            json.loads(await ws.recv())  # the first delta
            return start

    start = asyncio.run(talk())
    assert stub.wait_for_disconnect(timeout=5)
    stored = wait_for(lambda: Message.objects.filter(public_id=start["data"]["id"]).first())
    assert stored.status == "incomplete"
    assert 0 < len(stored.content.split()) < 40
