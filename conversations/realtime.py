"""Live updates of one conversation for whoever watches it: the /v1/realtime websocket and the SSE stream
`GET /v1/conversations/:id/events`.

Updates go through the channel layer (Redis when REDIS_URL is set, so every
web process sees them; in memory, one process, otherwise) to the group of the
conversation, after the transaction that made them commits.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# The channel-layer message type; consumers handle it in `conversation_update`.
UPDATE = "conversation.update"


def conversation_group(public_id: str) -> str:
    return f"conversation.{public_id}"


def _send(public_id: str, event: str, data: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(conversation_group(public_id), {"type": UPDATE, "event": event, "data": data})
    except Exception:  # watchers miss a live update; the change itself is stored and in the webhooks
        logger.exception("Could not send %s to the watchers of %s", event, public_id)


def conversation_broadcast(*, public_id: str, event: str, data: dict) -> None:
    """Send `event` with `data` to the watchers of conversation `public_id` once the caller's transaction commits."""
    transaction.on_commit(lambda: _send(public_id, event, data))
