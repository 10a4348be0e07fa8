"""The Redis channel layer that live streams listen on: a quiet channel keeps waiting, it does not fail."""

import asyncio
import os

import pytest
import redis.exceptions
from channels.layers import get_channel_layer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the Redis channel layer needs REDIS_URL"),
]


def test_listening_on_a_quiet_channel_outlasts_the_layers_five_second_wait():
    # channels_redis waits 5 s per BZPOPMIN; with redis-py 8's default 5 s read timeout the read itself
    # failed (redis TimeoutError), which ended every widget and /events stream after 5 quiet seconds.
    assert not issubclass(redis.exceptions.TimeoutError, asyncio.TimeoutError)
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"

    async def listen() -> None:
        channel = await layer.new_channel()
        with pytest.raises(asyncio.TimeoutError):  # still waiting when we stop
            await asyncio.wait_for(layer.receive(channel), timeout=8)

    asyncio.run(listen())
