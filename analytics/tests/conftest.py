"""Analytics fixtures: factories that put rows at a chosen moment, and a conversation builder."""

from datetime import datetime, timedelta

import factory
import pytest

from bothero.testing.factories import BotFactory, ConversationFactory, LeadFactory, MessageFactory
from conversations.models import Conversation, Lead, Message


def _at(field: str):
    """A post-generation hook that moves an auto_now_add timestamp to the given moment."""

    def hook(obj, create, extracted, **kwargs):
        if extracted is not None:
            type(obj).objects.filter(pk=obj.pk).update(**{field: extracted})
            setattr(obj, field, extracted)

    return factory.PostGeneration(hook)


class TimedConversationFactory(ConversationFactory):
    class Meta:
        skip_postgeneration_save = True

    at = _at("created_at")


class TimedMessageFactory(MessageFactory):
    class Meta:
        skip_postgeneration_save = True

    at = _at("created_at")


class TimedLeadFactory(LeadFactory):
    class Meta:
        skip_postgeneration_save = True

    at = _at("captured_at")


SOURCES = [{"document_id": "doc_faq", "title": "FAQ", "chunk_id": "1", "score": 0.8, "snippet": "..."}]


def exchange(
    conversation: Conversation,
    at: datetime,
    question: str = "What are your opening hours?",
    *,
    fallback: bool = False,
    sources: list | None = None,
    latency_ms: int | None = 400,
    feedback: str | None = None,
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
) -> tuple[Message, Message]:
    """A user question at `at` and the assistant's answer one second later."""
    user = TimedMessageFactory(conversation=conversation, role=Message.Role.USER, content=question, at=at)
    if sources is None:
        sources = [] if fallback else SOURCES
    answer = TimedMessageFactory(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=conversation.bot.fallback_message if fallback else "We are open 9 to 5.",
        sources=sources,
        is_fallback=fallback,
        latency_ms=latency_ms,
        feedback_rating=feedback,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        at=at + timedelta(seconds=1),
    )
    return user, answer


def chat(bot, at: datetime, exchanges: int = 1, *, end_user_id: str = "", **kwargs) -> Conversation:
    """A conversation started at `at` with `exchanges` question/answer pairs a minute apart."""
    conversation = TimedConversationFactory(bot=bot, end_user_id=end_user_id, at=at)
    for number in range(exchanges):
        exchange(conversation, at + timedelta(minutes=number), **kwargs)
    return conversation


def lead_at(conversation: Conversation, at: datetime, **fields) -> Lead:
    return TimedLeadFactory(conversation=conversation, at=at, **fields)


@pytest.fixture
def charlie_bot(charlie):
    return BotFactory(tenant=charlie.tenant)
