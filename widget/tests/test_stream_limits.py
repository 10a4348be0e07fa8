"""What bounds a website visitor's live stream: slots per visitor and per address, and what the stream shows."""

import time

import pytest

from bothero import ratelimit
from conversations.events import visitor_event_data


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
