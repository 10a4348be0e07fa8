"""A streamed reply: the provider's tokens as events, written as SSE (native or OpenAI shape) or websocket JSON.

`reply_events` is the one token loop, shared by the SSE endpoint and the
realtime websocket. It is an async generator so that, under ASGI, tokens go
from the upstream connection to the client on the event loop without
thread hops; it writes to the database only after the last token. When the
client goes away (the task is cancelled, or the generator closed), the
upstream stream is closed — which stops the generation — and what was
generated is stored with status `incomplete`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections

from bothero.api.errors import error_body
from bothero.errors import ApplicationError, UpstreamError
from conversations.events import visitor_event_data
from conversations.models import Message
from conversations.realtime import conversation_group
from conversations.selectors import conversation_status_get
from conversations.serializers import chat_completion_data
from conversations.services import PreparedReply, citation_renumberer, reply_finish

logger = logging.getLogger(__name__)

HEARTBEAT = object()
SSE_HEARTBEAT = b": heartbeat\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class InternalStreamError(ApplicationError):
    status_code = 500
    error_type = "api_error"
    default_code = "internal_error"


@dataclass(frozen=True)
class ChatEvent:
    type: str  # message.start | message.delta | message.completed | error | heartbeat
    data: dict | None = None


async def with_heartbeats(source: AsyncIterator, interval: float) -> AsyncIterator:
    """Items of `source`, with HEARTBEAT whenever it stays silent for `interval` seconds.

    The pending read is never cancelled by a heartbeat; it is cancelled (and
    `source` closed) only when this generator is closed.
    """
    iterator = aiter(source)
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait((pending,), timeout=interval)
            if not done:
                yield HEARTBEAT
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        await abandon_read(pending, iterator)


async def abandon_read(pending: asyncio.Future | None, iterator) -> None:
    """Cancel a pending read of `iterator` (if any), wait for it to end, whatever it raises, and close `iterator`."""
    if pending is not None:
        pending.cancel()
        try:
            await pending
        except (asyncio.CancelledError, StopAsyncIteration, Exception):
            pass
    await iterator.aclose()


def start_data(prepared: PreparedReply) -> dict:
    return {
        "id": prepared.assistant_id,
        "object": "message.start",
        "bot_id": prepared.bot.public_id,
        "conversation_id": prepared.conversation.public_id,
        "user_message_id": prepared.user_message.public_id,
        "model": prepared.model,
        "sources": prepared.sources,
    }


def completion_data(message: Message) -> dict:
    return chat_completion_data(message)


def error_data(exc: ApplicationError, request_id: str | None) -> dict:
    body = error_body(exc.status_code, code=exc.code, message=exc.message, param=exc.param, error_type=exc.error_type)
    body["error"]["request_id"] = request_id
    return body


def release_pooled_connections() -> None:
    """Give this thread's pooled database connections back to their pool (the next query takes one again).

    Only with the pool (the ASGI web process): elsewhere closing would cost a reconnect, and a connection
    inside a transaction (a test's, an atomic block) must be kept.
    """
    if not settings.DB_POOL:
        return
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block:
            conn.close()


async def _store(
    prepared: PreparedReply, parts: list[str], usage, status: str, ended_at: float, model, citations
) -> Message:
    return await sync_to_async(reply_finish)(
        prepared=prepared,
        content="".join(parts),
        usage=usage,
        status=status,
        latency_ms=int((ended_at - prepared.started_at) * 1000),
        model=model,
        citations=citations,
    )


async def reply_events(prepared: PreparedReply, *, request_id: str | None = None) -> AsyncIterator[ChatEvent]:
    """`message.start`, then `message.delta`s (and heartbeats), then `message.completed` or `error`."""
    yield ChatEvent("message.start", start_data(prepared))
    parts: list[str] = []
    usage = None
    model = None
    error: ApplicationError | None = None
    ended_at = time.perf_counter()
    # The model's citation markers are renumbered as they pass (see conversations.citations).
    citations = citation_renumberer(prepared)
    # Waiting on the model takes seconds and needs no database: the request's pooled connection goes back
    # to the pool now (storing the answer takes one again), or 40 concurrent streams fill both web pools.
    await sync_to_async(release_pooled_connections)()
    try:
        pieces = with_heartbeats(prepared.provider.astream(prepared.request), settings.CHAT_HEARTBEAT_SECONDS)
        async with aclosing(pieces):
            async for piece in pieces:
                if piece is HEARTBEAT:
                    yield ChatEvent("heartbeat")
                    continue
                delta = piece.delta if citations is None else citations.feed(piece.delta)
                if delta:
                    parts.append(delta)
                    ended_at = time.perf_counter()
                    yield ChatEvent("message.delta", {"delta": delta})
                usage = piece.usage or usage
                model = piece.model or model
        tail = citations.flush() if citations is not None else ""
        if tail:  # a "[" held back at the very end, which no marker followed
            parts.append(tail)
            yield ChatEvent("message.delta", {"delta": tail})
    except UpstreamError as exc:
        error = exc
    except (asyncio.CancelledError, GeneratorExit):
        # The client went away: the upstream stream is closed by now; keep what it generated.
        stored = _store(prepared, parts, None, Message.Status.INCOMPLETE, ended_at, model, citations)
        await asyncio.shield(asyncio.ensure_future(stored))
        raise
    except Exception:
        logger.exception("The chat stream failed")
        error = InternalStreamError("Something went wrong on our side while answering. It has been logged.")
    if error is not None:
        tail = citations.flush() if citations is not None else ""
        if tail:
            parts.append(tail)
        ended_at = time.perf_counter() if not parts else ended_at
        status = Message.Status.INCOMPLETE if parts else Message.Status.FAILED
        try:
            await _store(prepared, parts, usage, status, ended_at, model, citations)
        except Exception:
            logger.exception("Storing a failed chat answer failed")
        yield ChatEvent("error", error_data(error, request_id))
        return
    try:
        message = await _store(prepared, parts, usage, Message.Status.COMPLETE, ended_at, model, citations)
    except Exception:
        # Without this the exception would end the response mid-body: the client would see a cut stream
        # and no reason. It gets the documented `error` event instead (the answer was not kept).
        logger.exception("Storing the streamed answer failed")
        error = InternalStreamError("Something went wrong on our side while storing the answer. It has been logged.")
        yield ChatEvent("error", error_data(error, request_id))
        return
    yield ChatEvent("message.completed", completion_data(message))


def json_bytes(data) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


async def native_sse(prepared: PreparedReply, *, request_id: str | None = None) -> AsyncIterator[bytes]:
    """`event: <type>` / `data: <json>` frames; heartbeats as SSE comments."""
    async with aclosing(reply_events(prepared, request_id=request_id)) as events:
        async for event in events:
            if event.type == "heartbeat":
                yield SSE_HEARTBEAT
            else:
                yield b"event: " + event.type.encode() + b"\ndata: " + json_bytes(event.data) + b"\n\n"


async def openai_sse(
    prepared: PreparedReply, *, include_usage: bool, request_id: str | None = None
) -> AsyncIterator[bytes]:
    """OpenAI's `chat.completion.chunk` frames, then `data: [DONE]`; an error as `data: {"error": ...}`.

    `model` is what answers (as in the native shape): the model asked for, then, from the last chunk on,
    the name the model server reported."""
    created = int(time.time())
    model_name = prepared.model

    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> bytes:
        body = {
            "id": prepared.assistant_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
        return b"data: " + json_bytes(body) + b"\n\n"

    async with aclosing(reply_events(prepared, request_id=request_id)) as events:
        async for event in events:
            if event.type == "heartbeat":
                yield SSE_HEARTBEAT
            elif event.type == "message.start":
                yield chunk(
                    {"role": "assistant", "content": ""},
                    conversation_id=prepared.conversation.public_id,
                    sources=prepared.sources,
                )
            elif event.type == "message.delta":
                yield chunk({"content": event.data["delta"]})
            elif event.type == "message.completed":
                model_name = event.data["model"]
                yield chunk({}, "stop")
                if include_usage:
                    body = {
                        "id": prepared.assistant_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model_name,
                        "choices": [],
                        "usage": event.data["usage"],
                    }
                    yield b"data: " + json_bytes(body) + b"\n\n"
                yield b"data: [DONE]\n\n"
            elif event.type == "error":
                yield b"data: " + json_bytes(event.data) + b"\n\n"


def buffered(make_stream: Callable[[], AsyncIterator[bytes]]) -> Iterator[bytes]:
    """Serve an async stream to a synchronous (WSGI, test client) server, which cannot stream it live.

    The async generator runs to the end under `async_to_sync`, whose
    database calls come back to this thread (and its connection).
    """

    async def collect() -> list[bytes]:
        return [part async for part in make_stream()]

    yield from async_to_sync(collect)()


async def _channel_messages(layer, channel: str) -> AsyncIterator[dict]:
    while True:
        yield await layer.receive(channel)


async def conversation_sse(
    public_id: str,
    *,
    heartbeat_seconds: float,
    max_seconds: float | None = None,
    for_visitor: bool = False,
    on_close: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """SSE frames of conversation `public_id`'s live updates (`conversations.realtime`): `event: <type>` and
    `data: <json>`, heartbeat comments while nothing happens, until the client goes away. The first frame,
    `event: ready` with the conversation's status, is sent once it listens (what happens from then on arrives).

    `max_seconds` ends the stream (within a heartbeat after it) so that a public client reconnects rather than
    holds it for ever; `for_visitor` shows the updates as a website visitor sees them
    (`conversations.events.visitor_event_data`); `on_close` runs once the stream ends, however it ends."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = conversation_group(public_id)
    closed = False

    async def close_once() -> None:
        nonlocal closed
        if on_close is not None and not closed:
            closed = True
            await sync_to_async(on_close, thread_sensitive=False)()

    await layer.group_add(group, channel)
    try:
        # Read once listening, so that no change falls between the two; the pooled connection then goes back
        # at once (as in reply_events): a stream open for minutes must not hold one.
        status = await sync_to_async(_status_and_release)(public_id)
        yield b"event: ready\ndata: " + json_bytes({"conversation_id": public_id, "status": status}) + b"\n\n"
        updates = with_heartbeats(_channel_messages(layer, channel), heartbeat_seconds)
        next_update = None
        try:
            while True:
                # Each read is shielded, so that when the client goes the cancellation lands here, and the
                # slots are given back before the pending channel-layer read is ended, which can wait for the
                # layer's receive timeout (5 s with channels_redis).
                next_update = asyncio.ensure_future(anext(updates))
                try:
                    update = await asyncio.shield(next_update)
                except StopAsyncIteration:
                    return
                next_update = None
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if update is HEARTBEAT:
                    yield SSE_HEARTBEAT
                    continue
                data = visitor_event_data(update["event"], update["data"]) if for_visitor else update["data"]
                if data is not None:
                    yield b"event: " + update["event"].encode() + b"\ndata: " + json_bytes(data) + b"\n\n"
        finally:
            await close_once()
            await abandon_read(next_update, updates)
    finally:
        await close_once()
        await layer.group_discard(group, channel)


def _status_and_release(public_id: str) -> str:
    status = conversation_status_get(public_id=public_id)
    release_pooled_connections()
    return status
