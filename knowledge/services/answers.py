"""Curated answers: the answer a business wants given verbatim to a question and its variants.

Each wording (the question and every variant) is embedded like a search query
and stored as a `CuratedPhrase`, which `knowledge.answer_selectors` matches
customers' questions against. Embedding runs before the short transaction
that writes the rows (never inside it).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from bothero.errors import NotFoundError, ValidationError
from conversations.models import Message
from knowledge.conf import configured_embedder
from knowledge.models import CuratedAnswer, CuratedPhrase

MAX_VARIANTS = 20


def _wordings(question: str, variants: list[str]) -> list[str]:
    """The question and its distinct variants, trimmed, in order."""
    seen, wordings = set(), []
    for text in [question, *variants]:
        text = " ".join(text.split())
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            wordings.append(text)
    return wordings


def _phrases(answer: CuratedAnswer, wordings: list[str], vectors) -> list[CuratedPhrase]:
    return [
        CuratedPhrase(answer=answer, bot_id=answer.bot_id, text=text, embedding=vector)
        for text, vector in zip(wordings, vectors, strict=True)
    ]


def curated_answer_create(
    *, tenant, bot, question: str, answer: str, variants: list[str] | None = None, source_message=None
) -> CuratedAnswer:
    """Create a curated answer for `bot` with its embedded wordings."""
    variants = variants or []
    wordings = _wordings(question, variants)
    vectors = configured_embedder().embed(wordings)
    with transaction.atomic():
        curated = CuratedAnswer.objects.create(
            tenant=tenant,
            bot=bot,
            question=question.strip(),
            variants=[variant.strip() for variant in variants if variant.strip()],
            answer=answer,
            source_message=source_message,
        )
        CuratedPhrase.objects.bulk_create(_phrases(curated, wordings, vectors))
    return curated


def curated_answer_update(
    *, curated: CuratedAnswer, question: str | None = None, variants: list[str] | None = None, answer: str | None = None
) -> CuratedAnswer:
    """Change some of the question, variants and answer; the wordings are re-embedded when the first two change."""
    new_question = curated.question if question is None else question.strip()
    new_variants = (
        curated.variants if variants is None else [variant.strip() for variant in variants if variant.strip()]
    )
    rewording = (new_question, new_variants) != (curated.question, curated.variants)
    wordings = _wordings(new_question, new_variants)
    vectors = configured_embedder().embed(wordings) if rewording else None
    with transaction.atomic():
        curated.question, curated.variants = new_question, new_variants
        if answer is not None:
            curated.answer = answer
        curated.save(update_fields=["question", "variants", "answer", "updated_at"])
        if rewording:
            curated.phrases.all().delete()
            CuratedPhrase.objects.bulk_create(_phrases(curated, wordings, vectors))
    return curated


def curated_answer_delete(*, curated: CuratedAnswer) -> None:
    curated.delete()


def curated_answer_used(*, curated: CuratedAnswer) -> None:
    """Count one more customer question answered with it (one UPDATE, no read)."""
    CuratedAnswer.objects.filter(pk=curated.pk).update(times_used=F("times_used") + 1, last_used_at=timezone.now())


def curated_answer_from_message(
    *, tenant, message_id: str, answer: str | None = None, question: str | None = None, variants=None
) -> CuratedAnswer:
    """A curated answer made from a message, in one call.

    From a customer's message (an unanswered question): that question, with
    `answer` (required). From an assistant's answer (rated, good or bad): the
    customer's question before it, with `answer`, or — when `answer` is left
    out — that answer itself (to keep a good answer word for word). Another
    tenant's message is a 404 `message_not_found`.
    """
    message = Message.objects.filter(tenant=tenant, public_id=message_id).select_related("bot").first()
    if message is None:
        raise NotFoundError(f"No such message: {message_id}.", code="message_not_found", param="from_message_id")
    if message.role == Message.Role.USER:
        asked = message.content
    elif message.role == Message.Role.ASSISTANT:
        before = (
            Message.objects.filter(conversation_id=message.conversation_id, id__lt=message.id, role=Message.Role.USER)
            .order_by("-id")
            .first()
        )
        if before is None:
            raise ValidationError(
                "No customer question comes before this answer.", code="no_question", param="from_message_id"
            )
        asked = before.content
        if answer is None and not message.is_fallback and message.content.strip():
            answer = message.content
    else:
        raise ValidationError(
            "Use a customer's question or an assistant's answer.", code="invalid_message", param="from_message_id"
        )
    if not answer:
        raise ValidationError("Give the answer to use.", code="answer_required", param="answer")
    question = question or asked[:500]
    return curated_answer_create(
        tenant=tenant, bot=message.bot, question=question, answer=answer, variants=variants, source_message=message
    )
