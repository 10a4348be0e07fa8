"""What bounds a website visitor's live stream: slots per visitor and per address, and what the stream shows."""

import asyncio
import time

import pytest
from django.core.handlers.asgi import ASGIHandler

from accounts.services import api_key_create
from bothero import ratelimit
from bothero.testing.factories import BotFactory
from bothero.testing.helpers import unique_client_address
from conftest import make_actor
from conversations.events import visitor_event_data

from .helpers import SITE, browser, visitor_id


@pytest.fixture(params=["redis", "process"])
def slots(request, settings):
    """Slots counted in Redis (when REDIS_URL is set) and per process (without it, or with Redis down)."""
    if request.param == "redis" and not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    if request.param == "process":
        settings.REDIS_URL = ""
    return f"test:{time.time_ns()}"


def test_a_slot_is_refused_when_all_are_taken_and_free_again_once_released(slots):
    first = ratelimit.slot_acquire(slots, limit=2, ttl_seconds=60)
    second = ratelimit.slot_acquire(slots, limit=2, ttl_seconds=60)
    assert first is not None
    assert second not in (None, first)
    assert ratelimit.slot_acquire(slots, limit=2, ttl_seconds=60) is None
    ratelimit.slot_release(slots, first)
    assert ratelimit.slot_acquire(slots, limit=2, ttl_seconds=60) is not None


def test_a_slot_never_released_frees_itself_when_it_expires(slots):
    assert ratelimit.slot_acquire(slots, limit=1, ttl_seconds=0.3) is not None
    assert ratelimit.slot_acquire(slots, limit=1, ttl_seconds=0.3) is None
    time.sleep(0.4)
    assert ratelimit.slot_acquire(slots, limit=1, ttl_seconds=0.3) is not None


def test_a_visitor_sees_agents_messages_and_the_conversations_status_but_not_its_own_messages():
    agent = {"id": "msg_1", "object": "message", "role": "agent", "content": "Sam here."}
    assert visitor_event_data("message.created", agent) == agent
    assert visitor_event_data("message.created", {**agent, "role": "user"}) is None
    conversation = {
        "id": "conv_1",
        "object": "conversation",
        "bot_id": "bot_1",
        "status": "closed",
        "status_changed_at": "2026-11-30T16:00:00Z",
        "metadata": {"plan": "gold"},
        "end_user_id": "cust-981",
        "handoff_reason": "phrase",
    }
    assert visitor_event_data("conversation.closed", conversation) == {
        "id": "conv_1",
        "object": "conversation",
        "bot_id": "bot_1",
        "status": "closed",
        "status_changed_at": "2026-11-30T16:00:00Z",
    }


def test_a_stream_left_while_a_frame_is_being_sent_gives_its_slots_back_when_the_server_is_done(
    transactional_db, settings
):
    """The disconnect can come while Django awaits the send of a frame, not inside the stream's generator: Django
    then closes the response but leaves the generator to the garbage collector. The slots must not wait for it."""
    settings.CHAT_HEARTBEAT_SECONDS = 0.05
    settings.WIDGET_EVENTS_STREAMS_PER_ADDRESS = 1
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant, handoff={"enabled": True, "phrases": ["human"], "message": "Coming."})
    key = api_key_create(
        tenant=actor.tenant, name="Website", key_type="publishable", bot_ids=[bot.public_id], allowed_origins=[SITE]
    ).key
    visitor, address = visitor_id(), unique_client_address()
    started = browser(key, visitor=visitor, address=address).post(
        "/v1/chat/completions", {"bot_id": bot.public_id, "message": "A human please"}, format="json"
    )
    conversation_id = started.json()["conversation_id"]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/v1/conversations/{conversation_id}/events",
        "raw_path": f"/v1/conversations/{conversation_id}/events".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"origin", SITE.encode()),
            (b"x-bothero-visitor", visitor.encode()),
        ],
        "client": (address, 50000),
        "server": ("testserver", 80),
    }

    async def leave_during_a_send():
        gone = asyncio.Event()
        bodies = []

        async def receive():
            if not bodies:
                bodies.append(b"")
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                assert message["status"] == 200
            elif message.get("body"):
                bodies.append(message["body"])
                if len(bodies) == 3:  # the ready event, then a heartbeat: the client goes during its send
                    gone.set()
                    await asyncio.sleep(30)

        await ASGIHandler()(scope, receive, send)
        # At once, before the event loop could finalize the abandoned generator.
        return ratelimit.slot_acquire(f"streams:address:{address}", limit=1, ttl_seconds=1)

    assert asyncio.run(leave_during_a_send()) is not None
