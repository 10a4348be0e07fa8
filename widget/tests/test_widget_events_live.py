"""A website visitor follows its own conversation live with a publishable key, under uvicorn: an agent's reply
arrives on the stream, the visitor's own messages do not, and the stream is bounded (slots, duration)."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack

import httpx
import pytest

from accounts.services import api_key_create
from bothero.testing.factories import BotFactory
from bothero.testing.processes import uvicorn_server
from conftest import make_actor
from conversations.testing.sse import sse_frames

from .helpers import SITE, visitor_id

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="live updates between processes need REDIS_URL"),
]


@pytest.fixture
def shop(transactional_db):
    actor = make_actor()
    bot = BotFactory(
        tenant=actor.tenant, handoff={"enabled": True, "phrases": ["human"], "message": "A person is coming."}
    )
    key = api_key_create(
        tenant=actor.tenant, name="Website", key_type="publishable", bot_ids=[bot.public_id], allowed_origins=[SITE]
    )
    return actor, bot, key.key


def widget_headers(key: str, visitor: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Origin": SITE, "X-BotHero-Visitor": visitor}


def next_event(frames):
    return next((name, data) for name, data in frames if name != "heartbeat")


def start_handoff(url: str, key: str, visitor: str, bot) -> str:
    answer = httpx.post(
        f"{url}/v1/chat/completions",
        headers=widget_headers(key, visitor),
        json={"bot_id": bot.public_id, "message": "A human please"},
        timeout=15,
    )
    assert answer.json()["conversation_status"] == "handoff", answer.text
    return answer.json()["conversation_id"]


def test_a_visitor_follows_its_conversation_and_gets_the_agents_reply_but_not_its_own_messages(shop):
    actor, bot, key = shop
    visitor = visitor_id()
    with (
        # Fewer pooled connections than open streams: a stream must not hold one while it waits.
        uvicorn_server(CHAT_HEARTBEAT_SECONDS="0.5", DB_POOL_MAX_SIZE="3", DB_POOL_TIMEOUT="0.5") as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {actor.key}"}, timeout=15) as agent_api,
        ExitStack() as agents_watching,
    ):
        conversation_id = start_handoff(url, key, visitor, bot)
        events_url = f"{url}/v1/conversations/{conversation_id}/events"
        for _ in range(5):
            watching = agents_watching.enter_context(
                httpx.stream("GET", events_url, headers={"Authorization": f"Bearer {actor.key}"}, timeout=15)
            )
            assert next_event(sse_frames(watching)) == (
                "ready",
                {"conversation_id": conversation_id, "status": "handoff"},
            )
        with httpx.stream("GET", events_url, headers=widget_headers(key, visitor), timeout=15) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            # The widget reads the body with fetch(): CORS lets the site's page read it.
            assert stream.headers["access-control-allow-origin"] == SITE
            frames = sse_frames(stream)
            assert next_event(frames) == ("ready", {"conversation_id": conversation_id, "status": "handoff"})
            held = httpx.post(
                f"{url}/v1/chat/completions",
                headers=widget_headers(key, visitor),
                json={"bot_id": bot.public_id, "message": "Still there?", "conversation_id": conversation_id},
                timeout=15,
            )
            assert held.status_code == 202
            reply = agent_api.post(
                f"/v1/conversations/{conversation_id}/messages", json={"role": "agent", "content": "Sam here."}
            )
            assert reply.status_code == 201
            name, message = next_event(frames)
            assert (name, message["role"], message["content"]) == ("message.created", "agent", "Sam here.")
            assert message["id"] == reply.json()["id"]
            assert agent_api.post(f"/v1/conversations/{conversation_id}/close").status_code == 200
            name, closed = next_event(frames)
            assert name == "conversation.closed"
            assert set(closed) == {"id", "object", "bot_id", "status", "status_changed_at"}
            assert closed["status"] == "closed"


def test_a_visitor_may_hold_only_so_many_streams_and_each_ends_after_the_longest_time(shop):
    _, bot, key = shop
    visitor = visitor_id()
    with uvicorn_server(
        CHAT_HEARTBEAT_SECONDS="0.2",
        WIDGET_EVENTS_MAX_SECONDS="2",
        WIDGET_EVENTS_STREAMS_PER_VISITOR="1",
        # The per-address cap counts every earlier test's streams from 127.0.0.1 (slots live for their
        # stream's longest life): this test is about the visitor's cap alone.
        WIDGET_EVENTS_STREAMS_PER_ADDRESS="1000",
    ) as url:
        conversation_id = start_handoff(url, key, visitor, bot)
        events_url = f"{url}/v1/conversations/{conversation_id}/events"
        with httpx.stream("GET", events_url, headers=widget_headers(key, visitor), timeout=15) as first:
            assert first.status_code == 200
            opened_at = time.monotonic()
            frames = sse_frames(first)
            assert next_event(frames)[0] == "ready"
            second = httpx.get(events_url, headers=widget_headers(key, visitor), timeout=15)
            assert second.status_code == 429
            assert second.json()["error"]["code"] == "too_many_streams"
            assert second.headers["retry-after"] == "30"
            assert second.headers["access-control-allow-origin"] == SITE
            # The server ends the stream (the widget reconnects); nothing but heartbeats came before.
            assert {name for name, _ in frames} == {"heartbeat"}
            assert 2 <= time.monotonic() - opened_at < 5
        # Its slot is free again: the visitor's next stream opens.
        with httpx.stream("GET", events_url, headers=widget_headers(key, visitor), timeout=15) as again:
            assert again.status_code == 200
            assert next_event(sse_frames(again))[0] == "ready"
        # A stream the visitor leaves (a page closed) gives its slot back as soon as the server sees it go:
        # before the slot would expire (7.2 s after it was taken), and before the stream's pending read of the
        # channel layer ends (up to channels_redis' 5 s receive timeout; the slot waited for it once). Each try
        # counts against the visitor's rate limit (20 a minute): a few, spaced out.
        left_at = time.monotonic()
        for _ in range(10):
            with httpx.stream("GET", events_url, headers=widget_headers(key, visitor), timeout=15) as after_leaving:
                if after_leaving.status_code == 200:
                    break
                after_leaving.read()
                assert after_leaving.json()["error"]["code"] == "too_many_streams"
                refusal = after_leaving.json()["error"]["message"]
            time.sleep(0.3)
        assert after_leaving.status_code == 200, refusal
        assert time.monotonic() - left_at < 2.5
