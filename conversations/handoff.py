"""Human handoff: a conversation's status (`bot` → `handoff` → `bot` again, or `closed`) and agents' replies.

A conversation moves to `handoff` when the customer asks for a person (the
bot's phrase list, or the chat request's `handoff` flag), when the bot has
fallen back `after_fallbacks` times in a row, by `POST
/v1/conversations/:id/handoff`, or when an agent replies. While it is there
the bot stays silent: customer messages are stored and shown to the agents,
who answer with `POST /v1/conversations/:id/messages` (role `agent`).
`resume` gives the conversation back to the bot; `close` ends it.

Each change emits its event (`conversation.handoff_requested`,
`conversation.resumed`, `conversation.closed`, and `message.created` for an
agent's message) in the same transaction, and is sent to the conversation's
live watchers after commit (`conversations.realtime`).
"""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone

from bothero.errors import ConflictError
from bots.models import Bot
from conversations.events import conversation_event_data, message_event_data
from conversations.models import Conversation, Message
from conversations.realtime import conversation_broadcast
from webhooks.services import event_emit

_WORDS = re.compile(r"[^\w']+")


def _normalised(text: str) -> str:
    return " " + " ".join(_WORDS.split(text.casefold())).strip() + " "


def handoff_settings(bot: Bot) -> dict:
    return bot.handoff or {}


def handoff_phrase_matched(*, bot: Bot, text: str) -> bool:
    """Whether `text` asks for a person in the words of the bot's phrase list (whole words; case, punctuation
    and spacing ignored). Always False while the bot's handoff is not enabled."""
    config = handoff_settings(bot)
    if not config.get("enabled"):
        return False
    message = _normalised(text)
    return any(_normalised(phrase) in message for phrase in config.get("phrases") or () if phrase.strip())


def _closed_error(conversation: Conversation) -> ConflictError:
    return ConflictError(
        f"The conversation {conversation.public_id} is closed; start a new one.",
        code="conversation_closed",
        param="conversation_id",
    )


def _locked(conversation: Conversation) -> Conversation:
    """The conversation's row, locked for this transaction, copied onto `conversation`."""
    row = Conversation.objects.select_for_update().get(pk=conversation.pk)
    for name in ("status", "handoff_reason", "status_changed_at", "message_count", "last_message_at", "updated_at"):
        setattr(conversation, name, getattr(row, name))
    return conversation


def _set_status(conversation: Conversation, status: str, reason: str, event: str) -> Conversation:
    conversation.status = status
    conversation.handoff_reason = reason
    conversation.status_changed_at = conversation.updated_at = timezone.now()
    conversation.save(update_fields=["status", "handoff_reason", "status_changed_at", "updated_at"])
    data = conversation_event_data(conversation)
    event_emit(tenant=conversation.tenant, type=event, data=data)
    conversation_broadcast(public_id=conversation.public_id, event=event, data=data)
    return conversation


@transaction.atomic
def conversation_handoff(*, conversation: Conversation, reason: str) -> Conversation:
    """Hand `conversation` to a person; emits `conversation.handoff_requested` (nothing when it already is)."""
    _locked(conversation)
    if conversation.status == Conversation.Status.CLOSED:
        raise _closed_error(conversation)
    if conversation.status == Conversation.Status.HANDOFF:
        return conversation
    return _set_status(conversation, Conversation.Status.HANDOFF, reason, "conversation.handoff_requested")


@transaction.atomic
def conversation_resume(*, conversation: Conversation) -> Conversation:
    """Give a handed-off conversation back to the bot; emits `conversation.resumed`."""
    _locked(conversation)
    if conversation.status == Conversation.Status.CLOSED:
        raise _closed_error(conversation)
    if conversation.status == Conversation.Status.BOT:
        raise ConflictError(
            f"The conversation {conversation.public_id} is already with the bot.", code="conversation_not_in_handoff"
        )
    return _set_status(conversation, Conversation.Status.BOT, "", "conversation.resumed")


@transaction.atomic
def conversation_close(*, conversation: Conversation) -> Conversation:
    """End a conversation (no more messages from anyone); emits `conversation.closed` (nothing when it already is)."""
    _locked(conversation)
    if conversation.status == Conversation.Status.CLOSED:
        return conversation
    return _set_status(conversation, Conversation.Status.CLOSED, conversation.handoff_reason, "conversation.closed")


@transaction.atomic
def agent_message_create(*, conversation: Conversation, content: str) -> Message:
    """A person's reply in `conversation`, which is handed off first if the bot still had it.

    Shown in the history, emitted as `message.created` (role `agent`) and sent to
    the conversation's live watchers. Agents' messages do not count against the
    monthly message quota (that counts customers' questions).
    """
    _locked(conversation)
    if conversation.status == Conversation.Status.CLOSED:
        raise _closed_error(conversation)
    if conversation.status == Conversation.Status.BOT:
        _set_status(
            conversation, Conversation.Status.HANDOFF, Conversation.HandoffReason.API, "conversation.handoff_requested"
        )
    now = timezone.now()
    message = Message.objects.create(
        tenant=conversation.tenant,
        bot=conversation.bot,
        conversation=conversation,
        role=Message.Role.AGENT,
        content=content,
    )
    conversation.message_count += 1
    conversation.last_message_at = conversation.updated_at = now
    conversation.save(update_fields=["message_count", "last_message_at", "updated_at"])
    data = message_event_data(message)
    event_emit(tenant=conversation.tenant, type="message.created", data=data)
    conversation_broadcast(public_id=conversation.public_id, event="message.created", data=data)
    return message


def fallbacks_in_a_row(*, conversation: Conversation, limit: int) -> int:
    """How many of the conversation's last `limit` assistant answers were fallbacks, counting back until one was not."""
    recent = (
        Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT)
        .order_by("-id")
        .values_list("is_fallback", flat=True)[:limit]
    )
    count = 0
    for is_fallback in recent:
        if not is_fallback:
            break
        count += 1
    return count


def handoff_after_fallback(*, conversation: Conversation, bot: Bot) -> bool:
    """After a fallback answer: hand off when the bot's `after_fallbacks` answers in a row were fallbacks."""
    config = handoff_settings(bot)
    limit = config.get("after_fallbacks")
    if not config.get("enabled") or not limit or conversation.status != Conversation.Status.BOT:
        return False
    if fallbacks_in_a_row(conversation=conversation, limit=limit) < limit:
        return False
    conversation_handoff(conversation=conversation, reason=Conversation.HandoffReason.FALLBACKS)
    return True
