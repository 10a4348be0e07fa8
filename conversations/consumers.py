"""The realtime chat websocket at /v1/realtime: the SSE stream's events, over one long-lived connection.

Authenticate with `Authorization: Bearer <api key or access token>` on the
handshake, or with a first message `{"type": "auth", "api_key": "bh_live_..."}`.
Then send `{"type": "chat", "bot_id", "message", "conversation_id"?, "metadata"?}`
and receive `{"type": "message.start" | "message.delta" | "message.completed" | "error", "data": {...}}`,
with the same data as the SSE events. `{"type": "cancel"}` stops the answer in
progress (stored as `incomplete`, like a closed connection); `{"type": "ping"}`
gets `{"type": "pong"}`. One answer at a time per connection.

Human handoff: a chat in a conversation that is with a person gets
`{"type": "chat.handoff", "data": {...}}` instead of an answer. A connection
follows every conversation it chatted in, and any conversation of its tenant
after `{"type": "subscribe", "conversation_id"}` (`unsubscribe` to stop): their
live updates arrive as `{"type": "message.created" | "conversation.handoff_requested"
| "conversation.resumed" | "conversation.closed", "data": {...}}` (an agent's
reply is a `message.created` with role `agent`).
"""

from __future__ import annotations

import asyncio
import json
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.services import publishable_key_not_allowed, tenant_check_api_access
from bothero import ratelimit
from bothero.api.authentication import principal_for_credential
from bothero.api.errors import error_body, exception_handler
from bothero.errors import ApplicationError, AuthenticationError, PermissionDeniedError, RateLimitError
from bothero.ids import random_base62
from bothero.request_context import current_request_id
from conversations import selectors, services
from conversations.realtime import conversation_group
from conversations.serializers import ChatRequestSerializer, chat_handoff_data
from conversations.streaming import reply_events

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def _credential_from_headers(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            parts = value.decode("latin1").split()
            if len(parts) == 2 and parts[0].lower() == "bearer":
                return parts[1]
            raise AuthenticationError(
                "The Authorization header must be 'Bearer <credential>'.", code="invalid_authorization_header"
            )
    return None


def authenticate(credential: str):
    """The principal for an API key or access token, through the same checks as the REST API's plan gate."""
    principal = principal_for_credential(credential)
    if principal.api_key is not None and principal.api_key.is_publishable:
        # The widget chats over SSE, where its origin, visitor and limits are checked; not here.
        raise publishable_key_not_allowed()
    tenant_check_api_access(tenant=principal.tenant)
    if principal.api_key is not None and principal.api_key.require_signature:
        raise PermissionDeniedError(
            "This API key requires signed requests, which a websocket cannot carry. Use another key.",
            code="signature_required",
        )
    return principal


def prepare_chat(principal, arguments: dict, started_at: float):
    """The rate limit, then the chat entry point, as for the REST API (sync: database work)."""
    tenant = principal.tenant
    limit = ratelimit.hit(f"tenant:{tenant.public_id}", limit=tenant.plan.requests_per_minute)
    if not limit.allowed:
        raise RateLimitError(f"Too many requests. Retry in {limit.reset_seconds} seconds.")
    return services.chat_reply_start(tenant=tenant, started_at=started_at, **arguments)


def subscription_check(principal, conversation_id: str) -> str:
    """The conversation's public id, when it is the principal's tenant's (else 404 `conversation_not_found`)."""
    return selectors.conversation_get(tenant=principal.tenant, public_id=conversation_id).public_id


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    principal = None
    chat_task: asyncio.Task | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.followed: set[str] = set()

    async def connect(self):
        await self.accept()
        try:
            credential = _credential_from_headers(self.scope)
        except ApplicationError as exc:
            await self._refuse(exc)
            return
        if credential is not None:
            await self._authenticate(credential)

    async def disconnect(self, code):
        await self._cancel_chat()
        for public_id in list(self.followed):
            await self._unfollow(public_id)

    async def _follow(self, public_id: str) -> None:
        if public_id not in self.followed and self.channel_layer is not None:
            self.followed.add(public_id)
            await self.channel_layer.group_add(conversation_group(public_id), self.channel_name)

    async def _unfollow(self, public_id: str) -> None:
        if public_id in self.followed:
            self.followed.discard(public_id)
            await self.channel_layer.group_discard(conversation_group(public_id), self.channel_name)

    async def conversation_update(self, message):
        """A live update of a followed conversation (`conversations.realtime`)."""
        await self.send_json({"type": message["event"], "data": message["data"]})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data if text_data is not None else bytes_data)
        except (TypeError, ValueError):
            await self._send_error(ApplicationError("Messages must be JSON objects.", code="invalid_json"))
            return
        if not isinstance(content, dict):
            await self._send_error(ApplicationError("Messages must be JSON objects.", code="invalid_json"))
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if self.principal is None:
            if kind == "auth":
                await self._authenticate(str(content.get("api_key") or content.get("token") or ""))
            else:
                await self._refuse(
                    AuthenticationError(
                        'Authenticate first: send {"type": "auth", "api_key": "..."} or an Authorization header.',
                        code="missing_credentials",
                    )
                )
            return
        if kind == "chat":
            if self.chat_task is not None and not self.chat_task.done():
                await self._send_error(
                    ApplicationError(
                        "An answer is still streaming on this connection; wait for it or cancel it.",
                        code="request_in_progress",
                        status_code=409,
                    )
                )
                return
            self.chat_task = asyncio.create_task(self._chat(content))
        elif kind == "cancel":
            await self._cancel_chat()
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind in ("subscribe", "unsubscribe"):
            await self._subscription(kind, content)
        else:
            await self._send_error(
                ApplicationError(
                    f"Unknown message type {kind!r}; expected chat, cancel, ping, subscribe or unsubscribe.",
                    code="invalid_type",
                )
            )

    async def _subscription(self, kind: str, content: dict) -> None:
        conversation_id = str(content.get("conversation_id") or "")
        try:
            public_id = await database_sync_to_async(subscription_check)(self.principal, conversation_id)
        except ApplicationError as exc:
            await self._send_error(exc)
            return
        if kind == "subscribe":
            await self._follow(public_id)
        else:
            await self._unfollow(public_id)
        await self.send_json({"type": f"{kind}d", "data": {"conversation_id": public_id}})

    async def _authenticate(self, credential: str) -> None:
        try:
            self.principal = await database_sync_to_async(authenticate)(credential)
        except ApplicationError as exc:
            await self._refuse(exc)
            return
        await self.send_json({"type": "session.created", "data": {"tenant_id": self.principal.tenant.public_id}})

    async def _refuse(self, exc: ApplicationError) -> None:
        await self._send_error(exc)
        await self.close(code=CLOSE_FORBIDDEN if exc.status_code == 403 else CLOSE_UNAUTHENTICATED)

    async def _send_error(self, exc: ApplicationError, request_id: str | None = None) -> None:
        body = error_body(
            exc.status_code, code=exc.code, message=exc.message, param=exc.param, error_type=exc.error_type
        )
        body["error"]["request_id"] = request_id
        await self.send_json({"type": "error", "data": body})

    async def _cancel_chat(self) -> None:
        task, self.chat_task = self.chat_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _chat(self, content: dict) -> None:
        started_at = time.perf_counter()
        request_id = f"req_{random_base62(24)}"
        token = current_request_id.set(request_id)
        try:
            data = ChatRequestSerializer(data={key: value for key, value in content.items() if key != "type"})
            data.is_valid(raise_exception=True)
            prepared = await database_sync_to_async(prepare_chat)(self.principal, data.chat_arguments(), started_at)
            await self._follow(prepared.conversation.public_id)
            if prepared.silent:
                await self.send_json({"type": "chat.handoff", "data": chat_handoff_data(prepared.user_message)})
                return
            async for event in reply_events(prepared, request_id=request_id):
                if event.type != "heartbeat":
                    await self.send_json({"type": event.type, "data": event.data})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The REST API's exception handler: same codes and envelope, unexpected errors logged.
            await self.send_json({"type": "error", "data": json.loads(exception_handler(exc, {}).content)})
        finally:
            current_request_id.reset(token)
