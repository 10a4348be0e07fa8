"""Conversation export: every message of the matching conversations, as JSON lines or CSV, streamed.

Memory stays constant however much is exported: rows are read by two nested
keyset paginations — up to CONVERSATION_CHUNK conversations at a time (by
primary key), and within those up to MESSAGE_CHUNK messages at a time (by
conversation, then message) — and each chunk is rendered and handed to the
server before the next is read. Under ASGI the chunks come from an async
iterator (each read in a worker thread), so uvicorn sends them as they are
made instead of reading the whole export first.

Order: conversations oldest first, each one's messages oldest first.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db.models import Q, QuerySet

from bothero.api.csvcells import csv_header, csv_line
from conversations.models import Conversation, Message
from conversations.serializers import iso_datetime, message_data

CONVERSATION_CHUNK = 200
MESSAGE_CHUNK = 1000
FORMATS = ("jsonl", "csv")
MEDIA_TYPES = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}

CSV_COLUMNS = [
    "conversation_id",
    "bot_id",
    "end_user_id",
    "conversation_status",
    "conversation_created_at",
    "message_id",
    "role",
    "content",
    "created_at",
    "status",
    "is_fallback",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "feedback_rating",
    "feedback_comment",
    "source_document_ids",
    "sources",
]


@dataclass
class ExportCursor:
    """Where an export is: the conversations being read and the last conversation and message done."""

    conversations: dict[int, Conversation] = field(default_factory=dict)
    after_conversation: int = 0
    after_message: tuple[int, int] | None = None
    done: bool = False


def export_next_messages(conversations: QuerySet[Conversation], cursor: ExportCursor) -> list[Message]:
    """The next messages of the export (at most MESSAGE_CHUNK), with their conversation and bot attached.

    Advances `cursor`; an empty list means the export is complete.
    """
    while not cursor.done:
        if not cursor.conversations:
            chunk = list(
                conversations.select_related("bot")
                .filter(pk__gt=cursor.after_conversation)
                .order_by("pk")[:CONVERSATION_CHUNK]
            )
            if not chunk:
                cursor.done = True
                break
            cursor.conversations = {conversation.pk: conversation for conversation in chunk}
            cursor.after_message = None
        messages = Message.objects.filter(conversation_id__in=list(cursor.conversations))
        if cursor.after_message is not None:
            conversation_id, message_id = cursor.after_message
            messages = messages.filter(
                Q(conversation_id__gt=conversation_id) | Q(conversation_id=conversation_id, id__gt=message_id)
            )
        page = list(messages.order_by("conversation_id", "id")[:MESSAGE_CHUNK])
        for message in page:
            message.conversation = cursor.conversations[message.conversation_id]
            message.bot = message.conversation.bot
        if len(page) < MESSAGE_CHUNK:
            # These conversations are done: the next read starts after the last of them.
            cursor.after_conversation = max(cursor.conversations)
            cursor.conversations = {}
        else:
            cursor.after_message = (page[-1].conversation_id, page[-1].pk)
        if page:
            return page
    return []


def _conversation_summary(conversation: Conversation) -> dict:
    return {
        "id": conversation.public_id,
        "end_user_id": conversation.end_user_id,
        "metadata": conversation.metadata,
        "status": conversation.status,
        "created_at": iso_datetime(conversation.created_at),
    }


def message_jsonl(message: Message) -> str:
    """One export line: the message as the API shows it, with a summary of its conversation."""
    line = {**message_data(message), "conversation": _conversation_summary(message.conversation)}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


def message_csv(message: Message) -> str:
    conversation = message.conversation
    return csv_line(
        [
            conversation.public_id,
            message.bot.public_id,
            conversation.end_user_id,
            conversation.status,
            iso_datetime(conversation.created_at),
            message.public_id,
            message.role,
            message.content,
            iso_datetime(message.created_at),
            message.status,
            "true" if message.is_fallback else "false",
            message.model,
            message.prompt_tokens,
            message.completion_tokens,
            message.latency_ms,
            message.feedback_rating,
            message.feedback_comment,
            " ".join(source.get("document_id", "") for source in message.sources),
            json.dumps(message.sources, ensure_ascii=False, separators=(",", ":")) if message.sources else "",
        ]
    )


def _render(messages: list[Message], export_format: str) -> str:
    render = message_jsonl if export_format == "jsonl" else message_csv
    return "".join(render(message) for message in messages)


def export_chunk(conversations: QuerySet[Conversation], cursor: ExportCursor, export_format: str) -> str:
    """The next rendered chunk of the export ("" at the end)."""
    return _render(export_next_messages(conversations, cursor), export_format)


def iter_export(conversations: QuerySet[Conversation], export_format: str) -> Iterator[str]:
    """The whole export, chunk by chunk (for WSGI servers and the test client)."""
    if export_format == "csv":
        yield csv_header(CSV_COLUMNS)
    cursor = ExportCursor()
    while text := export_chunk(conversations, cursor, export_format):
        yield text


async def aiter_export(conversations: QuerySet[Conversation], export_format: str) -> AsyncIterator[str]:
    """The same export as an async iterator, so ASGI servers stream it instead of buffering it whole."""
    if export_format == "csv":
        yield csv_header(CSV_COLUMNS)
    cursor = ExportCursor()
    while text := await sync_to_async(export_chunk)(conversations, cursor, export_format):
        yield text
