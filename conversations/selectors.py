"""Reads: conversations, their messages, the history a prompt needs, bots as models."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from bothero.errors import NotFoundError
from bots.models import Bot
from bots.selectors import bot_get
from conversations.models import Conversation, Lead, Message


def conversation_list(
    *,
    tenant,
    bot_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    has_lead: bool | None = None,
    status: str | None = None,
) -> QuerySet[Conversation]:
    """The tenant's conversations, optionally filtered (newest first once paginated).

    A `bot_id` that is not one of the tenant's bots is a 404 (`bot_not_found`), as everywhere else.
    """
    queryset = Conversation.objects.filter(tenant=tenant).select_related("bot")
    if bot_id is not None:
        queryset = queryset.filter(bot=bot_get(tenant=tenant, public_id=bot_id))
    if created_after is not None:
        queryset = queryset.filter(created_at__gt=created_after)
    if created_before is not None:
        queryset = queryset.filter(created_at__lt=created_before)
    if has_lead is not None:
        queryset = queryset.filter(has_lead=has_lead)
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def conversation_list_for_visitor(*, tenant, publishable_key, visitor) -> QuerySet[Conversation]:
    """The conversations a publishable key's visitor may see: their own, with the key's bots."""
    return Conversation.objects.filter(
        tenant=tenant, bot__publishable_keys=publishable_key, visitor_hash=visitor.visitor_hash
    ).select_related("bot")


def conversation_status_get(*, public_id: str) -> str:
    """The status of conversation `public_id` now ("" when it is gone)."""
    return Conversation.objects.filter(public_id=public_id).values_list("status", flat=True).first() or ""


def conversation_get(*, tenant, public_id: str) -> Conversation:
    """The tenant's conversation `public_id` (NotFoundError `conversation_not_found` for another tenant's)."""
    conversation = conversation_list(tenant=tenant).filter(public_id=public_id).first()
    if conversation is None:
        raise NotFoundError(
            f"No such conversation: {public_id}.", code="conversation_not_found", param="conversation_id"
        )
    return conversation


def chat_target_get(
    *,
    tenant,
    bot_id: str,
    conversation_id: str | None = None,
    bot_param: str = "bot_id",
    publishable_key=None,
    visitor=None,
) -> tuple[Bot, Conversation | None]:
    """The tenant's bot a chat message is for, and the conversation it continues (None: a new one).

    One query when both are given (the chat endpoint's hot path). NotFoundError
    (`bot_not_found` on `bot_param`, or `conversation_not_found`) for another
    tenant's ids, and for a conversation of another bot. With a publishable
    key: only the key's bots, and only the `visitor`'s own conversations.
    """
    if conversation_id:
        conversations = Conversation.objects.filter(tenant=tenant, public_id=conversation_id, bot__public_id=bot_id)
        if publishable_key is not None:
            conversations = conversation_list_for_visitor(
                tenant=tenant, publishable_key=publishable_key, visitor=visitor
            ).filter(public_id=conversation_id, bot__public_id=bot_id)
        conversation = conversations.select_related("bot").first()
        if conversation is not None:
            bot = conversation.bot
            bot.tenant = conversation.tenant = tenant  # the same row: no query to load it again
            return bot, conversation
    bot = bot_get(tenant=tenant, public_id=bot_id, param=bot_param, publishable_key=publishable_key)
    if conversation_id:
        raise NotFoundError(
            f"No such conversation: {conversation_id}.", code="conversation_not_found", param="conversation_id"
        )
    return bot, None


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return Message.objects.filter(conversation=conversation).select_related("conversation", "bot")


def message_get(*, conversation: Conversation, public_id: str) -> Message:
    message = message_list(conversation=conversation).filter(public_id=public_id).first()
    if message is None:
        raise NotFoundError(f"No such message: {public_id}.", code="message_not_found", param="message_id")
    return message


def history_messages(*, conversation: Conversation, before_id: int, limit: int) -> list[dict]:
    """Up to `limit` messages before `before_id`, oldest first, as prompt messages.

    Assistant answers that failed or were cut off are left out: the model
    should not build on half an answer.
    """
    rows = (
        Message.objects.filter(conversation=conversation, id__lt=before_id)
        .exclude(role=Message.Role.ASSISTANT, status__in=[Message.Status.FAILED, Message.Status.INCOMPLETE])
        .order_by("-id")
        .values_list("role", "content")[:limit]
    )
    return [{"role": role, "content": content} for role, content in reversed(rows)]


def conversation_user_texts(*, conversation: Conversation, limit: int = 20) -> list[str]:
    """The customer's recent messages in this conversation, newest first (for lead details)."""
    return list(
        Message.objects.filter(conversation=conversation, role=Message.Role.USER)
        .order_by("-id")
        .values_list("content", flat=True)[:limit]
    )


def lead_for_conversation(*, conversation: Conversation, email: str) -> Lead | None:
    """The conversation's lead for `email`, else its lead without an email (to complete), else None."""
    leads = Lead.objects.filter(conversation=conversation)
    if email:
        found = leads.filter(email=email).first()
        if found is not None:
            return found
        return leads.filter(email="").order_by("-id").first()
    return leads.order_by("-id").first()
