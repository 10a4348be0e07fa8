"""Handoff on the wire: a real uvicorn with the Redis channel layer; agents' replies reach the conversation's
SSE stream and the /v1/realtime websocket as they are posted."""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import pytest
import websockets

from bothero.testing.factories import BotFactory
from bothero.testing.processes import uvicorn_server
from conftest import make_actor
from conversations.testing.sse import sse_frames

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="live updates between processes need REDIS_URL"),
]


@pytest.fixture
def live(transactional_db):
    actor = make_actor()
    bot = BotFactory(
        tenant=actor.tenant, handoff={"enabled": True, "phrases": ["human"], "message": "A person is coming."}
    )
    with uvicorn_server(CHAT_HEARTBEAT_SECONDS="0.5") as url:
        yield url, actor, bot


def test_the_events_stream_carries_agent_replies_customer_messages_and_status_changes(live):
    url, actor, bot = live
    headers = {"Authorization": f"Bearer {actor.key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=15) as api:
        started = api.post("/v1/chat/completions", json={"bot_id": bot.public_id, "message": "A human please"})
        conversation_id = started.json()["conversation_id"]
        assert started.json()["conversation_status"] == "handoff"
        with httpx.stream("GET", f"{url}/v1/conversations/{conversation_id}/events", headers=headers, timeout=15) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            frames = sse_frames(r)
            assert next(frames) == ("ready", {"conversation_id": conversation_id, "status": "handoff"})
            agent = api.post(
                f"/v1/conversations/{conversation_id}/messages", json={"role": "agent", "content": "Sam here."}
            )
            assert agent.status_code == 201
            waiting = api.post(
                "/v1/chat/completions",
                json={"bot_id": bot.public_id, "message": "Thanks Sam", "conversation_id": conversation_id},
            )
            assert waiting.status_code == 202
            assert api.post(f"/v1/conversations/{conversation_id}/resume").status_code == 200
            received, heartbeats = [], 0
            for name, data in frames:
                if name == "heartbeat":
                    heartbeats += 1
                    continue
                received.append((name, data))
                if name == "conversation.resumed":
                    break
    assert [(name, data.get("role") or data["status"]) for name, data in received] == [
        ("message.created", "agent"),
        ("message.created", "user"),
        ("conversation.resumed", "bot"),
    ]
    assert received[0][1]["id"] == agent.json()["id"]
    assert received[1][1]["id"] == waiting.json()["user_message_id"]


def test_the_websocket_gets_the_agents_reply_in_a_conversation_it_chats_in(live):
    url, actor, bot = live
    headers = {"Authorization": f"Bearer {actor.key}"}

    async def receive(ws, wanted: set[str]) -> dict[str, dict]:
        found = {}
        while not wanted <= set(found):
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
            found.setdefault(message["type"], message["data"])
        return found

    async def talk():
        async with websockets.connect(
            url.replace("http://", "ws://") + "/v1/realtime", additional_headers=headers
        ) as ws:
            await ws.recv()  # session.created
            await ws.send(json.dumps({"type": "chat", "bot_id": bot.public_id, "message": "Can a human help?"}))
            notice = await receive(ws, {"message.completed"})
            conversation_id = notice["message.completed"]["conversation_id"]
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=15) as api:
                agent = await api.post(
                    f"/v1/conversations/{conversation_id}/messages", json={"role": "agent", "content": "Hi, Sam here."}
                )
                assert agent.status_code == 201
            reply = await receive(ws, {"message.created"})
            await ws.send(
                json.dumps(
                    {"type": "chat", "bot_id": bot.public_id, "message": "Great", "conversation_id": conversation_id}
                )
            )
            held = await receive(ws, {"chat.handoff"})
            return notice["message.completed"], reply["message.created"], held["chat.handoff"]

    notice, reply, held = asyncio.run(talk())
    assert notice["content"] == "A person is coming."
    assert notice["conversation_status"] == "handoff"
    assert (reply["role"], reply["content"]) == ("agent", "Hi, Sam here.")
    assert held["conversation_status"] == "handoff"


def test_a_websocket_follows_a_conversation_it_subscribes_to_but_never_another_tenants(live):
    url, actor, bot = live
    outsider = make_actor()
    headers = {"Authorization": f"Bearer {actor.key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=15) as api:
        conversation_id = api.post(
            "/v1/chat/completions", json={"bot_id": bot.public_id, "message": "A human, please"}
        ).json()["conversation_id"]

    async def talk(key: str):
        ws_url = url.replace("http://", "ws://") + "/v1/realtime"
        async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            await ws.recv()  # session.created
            await ws.send(json.dumps({"type": "subscribe", "conversation_id": conversation_id}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
            if answer["type"] != "subscribed":
                return answer, None
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=15) as api:
                await api.post(f"/v1/conversations/{conversation_id}/close")
            return answer, json.loads(await asyncio.wait_for(ws.recv(), timeout=15))

    refused, _ = asyncio.run(talk(outsider.key))
    assert refused["type"] == "error"
    assert refused["data"]["error"]["code"] == "conversation_not_found"
    subscribed, update = asyncio.run(talk(actor.key))
    assert subscribed == {"type": "subscribed", "data": {"conversation_id": conversation_id}}
    assert update["type"] == "conversation.closed"
    assert update["data"]["status"] == "closed"
