"""The chat engine's writes: a reply (docs/architecture.md, "The hot paths"), leads, feedback, deletion.

Every door (the native and OpenAI-shaped views, the realtime websocket) enters
through `chat_reply_start`. A reply runs in three steps so that nothing slow
happens inside a database transaction and a streamed answer can share
everything but the token loop:

1. `reply_prepare` (called by `chat_reply_start`) — in one transaction: the monthly quota, the conversation
   (new or continued), the customer's message, lead details found in it and
   their events; then, outside any transaction, retrieval and the prompt.
2. the provider answers, in one piece (`reply_generate`) or token by token
   (`conversations.streaming.reply_events`);
3. `reply_finish` — in one transaction: the assistant message with its usage,
   sources, latency and status, the conversation's counters, token usage and
   `message.created`.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.services import current_period_start
from bothero.errors import ConflictError, RateLimitError, UpstreamError, ValidationError
from bothero.ids import new_public_id
from bots.models import DEFAULT_HANDOFF_MESSAGE, Bot
from conversations import selectors, sql
from conversations.answerability import answerable_passages
from conversations.citations import CitationRenumberer
from conversations.events import lead_event_data, message_event_data
from conversations.followups import CONTEXT_TURNS, follow_up_context, looks_like_follow_up, passages_fuse
from conversations.handoff import (
    conversation_handoff,
    handoff_after_fallback,
    handoff_phrase_matched,
    handoff_settings,
)
from conversations.leads import ContactDetails, extract_contact_details
from conversations.models import Conversation, Lead, Message
from conversations.prompt import build_messages, count_prompt_tokens, count_tokens, history_within_budget
from conversations.providers import ChatProvider, ProviderRequest, Usage, get_provider
from conversations.providers.canned import CannedProvider
from conversations.realtime import conversation_broadcast
from knowledge.answer_selectors import CuratedMatch, curated_answer_match
from knowledge.embeddings import EmbeddingError
from knowledge.selectors import query_embeddings, search
from knowledge.services import curated_answer_used
from webhooks.services import event_emit


class QuotaExceededError(RateLimitError):
    default_code = "monthly_quota_exceeded"


@dataclass
class PreparedReply:
    """Everything needed to answer, decided before the provider is called."""

    tenant: object
    bot: Bot
    conversation: Conversation
    user_message: Message
    assistant_id: str  # the assistant message's id, known before it is stored (for `message.start`)
    provider: ChatProvider
    request: ProviderRequest
    sources: list[dict]
    model: str
    started_at: float  # time.perf_counter() when the request arrived
    conversation_created: bool
    # The conversation is with a person (handoff): the message is stored, the bot does not answer.
    silent: bool = False


# --- quota ----------------------------------------------------------------------------


def next_period_start(now: datetime | None = None) -> datetime:
    start = current_period_start(now)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def message_quota_check(*, tenant, messages_this_month: int) -> None:
    """Raise 429 `monthly_quota_exceeded` when `messages_this_month` (this one counted) is over the plan's quota.

    The count comes from the statement that added this message to the usage
    counter, in the caller's transaction: the counter row stays locked until
    it ends, so concurrent requests cannot both take the last message, and
    raising rolls the count back.
    """
    limit = tenant.plan.max_messages_per_month
    if limit is None or messages_this_month <= limit:
        return
    now = timezone.now()
    reset = next_period_start(now)
    raise QuotaExceededError(
        f"Your {tenant.plan.name} plan includes {limit} messages a month and they are used up. "
        f"The quota resets at {reset.strftime('%Y-%m-%dT%H:%M:%SZ')}; upgrade your plan for more.",
        headers={
            "Retry-After": str(max(1, int((reset - now).total_seconds()))),
            "X-Quota-Reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )


# --- leads ----------------------------------------------------------------------------


def lead_capture(*, conversation: Conversation, message: Message) -> Lead | None:
    """Record the contact details in a customer's message as the conversation's lead.

    One lead per conversation and email; a phone number or name without an
    email completes the conversation's latest lead (or starts one when a
    phone number is given). Emits `lead.captured` when a lead is created or
    gains details. Call inside the transaction that stores `message`.
    """
    bot = conversation.bot
    config = bot.lead_capture or {}
    if not config.get("enabled"):
        return None
    fields = config.get("fields") or ("name", "email", "phone")
    found = extract_contact_details(message.content, fields)
    if not found:
        return None
    lead = selectors.lead_for_conversation(conversation=conversation, email=found.email)
    if lead is None:
        if not (found.email or found.phone):
            return None  # a name alone is kept in the transcript until contact details follow
        found = _with_earlier_details(conversation, found, fields)
        try:
            with transaction.atomic():
                lead = Lead.objects.create(
                    tenant=conversation.tenant,
                    bot=bot,
                    conversation=conversation,
                    message=message,
                    name=found.name,
                    email=found.email,
                    phone=found.phone,
                )
        except IntegrityError:
            return None  # a concurrent message of this conversation recorded this email first
    else:
        changed = [
            name
            for name in ("name", "email", "phone")
            if getattr(found, name) and getattr(lead, name) != getattr(found, name)
        ]
        if not changed:
            return lead
        for name in changed:
            setattr(lead, name, getattr(found, name))
        lead.message = message
        lead.save(update_fields=[*changed, "message"])
    if not conversation.has_lead:
        Conversation.objects.filter(pk=conversation.pk).update(has_lead=True)
        conversation.has_lead = True
    event_emit(tenant=conversation.tenant, type="lead.captured", data=lead_event_data(lead))
    return lead


@transaction.atomic
def lead_submit(*, conversation: Conversation, name: str = "", email: str = "", phone: str = "") -> Lead:
    """Contact details a visitor gave in the chat widget's lead form, as the conversation's lead.

    Like details found in a message: one lead per conversation and email,
    completed rather than duplicated; emits `lead.captured`. Unlike them, it
    does not depend on the bot's lead capture being on for messages.
    """
    lead = selectors.lead_for_conversation(conversation=conversation, email=email)
    found = {"name": name, "email": email, "phone": phone}
    if lead is None:
        lead = Lead.objects.create(tenant=conversation.tenant, bot=conversation.bot, conversation=conversation, **found)
    else:
        changed = [field for field, value in found.items() if value and getattr(lead, field) != value]
        if not changed:
            return lead
        for field in changed:
            setattr(lead, field, found[field])
        lead.save(update_fields=changed)
    if not conversation.has_lead:
        Conversation.objects.filter(pk=conversation.pk).update(has_lead=True)
        conversation.has_lead = True
    event_emit(tenant=conversation.tenant, type="lead.captured", data=lead_event_data(lead))
    return lead


def _with_earlier_details(conversation: Conversation, found: ContactDetails, fields) -> ContactDetails:
    """Fill what `found` lacks from the customer's earlier messages (a name given before the email)."""
    name, phone = found.name, found.phone
    for text in selectors.conversation_user_texts(conversation=conversation)[1:]:
        if name and phone:
            break
        earlier = extract_contact_details(text, fields)
        name = name or earlier.name
        phone = phone or earlier.phone
    return ContactDetails(name=name, email=found.email, phone=phone)


# --- a reply ----------------------------------------------------------------------------


END_USER_METADATA_KEYS = ("end_user_id", "user_id")


def _end_user_id(metadata: dict) -> str:
    for key in END_USER_METADATA_KEYS:
        value = metadata.get(key)
        if value not in (None, ""):
            return str(value)[:200]
    return ""


@transaction.atomic
def user_message_record(
    *,
    tenant,
    bot: Bot,
    conversation: Conversation | None,
    content: str,
    metadata: dict,
    end_user_id: str,
    visitor_hash: str = "",
) -> tuple[Conversation, Message, bool]:
    """Quota, conversation and the customer's message with their events (one statement), and the lead found
    in it, in one transaction. `visitor_hash` binds a new conversation to a widget visitor."""
    now = timezone.now()
    created = conversation is None
    changes = {}
    if created:
        conversation = Conversation(
            tenant=tenant,
            bot=bot,
            visitor_hash=visitor_hash,
            end_user_id=end_user_id or _end_user_id(metadata),
            metadata=metadata,
            message_count=1,
            last_message_at=now,
        )
    else:
        if metadata and {**conversation.metadata, **metadata} != conversation.metadata:
            changes["metadata"] = conversation.metadata = {**conversation.metadata, **metadata}
        if not conversation.end_user_id and (end_user_id or _end_user_id(metadata)):
            changes["end_user_id"] = conversation.end_user_id = end_user_id or _end_user_id(metadata)
        conversation.last_message_at = conversation.updated_at = now
    message = Message(tenant=tenant, bot=bot, conversation=conversation, role=Message.Role.USER, content=content)
    messages_this_month = sql.user_message_insert(
        message=message, conversation=conversation, conversation_changes=changes
    )
    message_quota_check(tenant=tenant, messages_this_month=messages_this_month)
    lead_capture(conversation=conversation, message=message)
    return conversation, message, created


# Embedding a question uses no database connection; searching does (its own, per worker thread).
# Two pools, so a search waiting for its question's embedding never holds up that embedding.
_embedding_pool = ThreadPoolExecutor(max_workers=settings.CHAT_RETRIEVAL_THREADS, thread_name_prefix="embedding")
_retrieval_pool = ThreadPoolExecutor(max_workers=settings.CHAT_RETRIEVAL_THREADS, thread_name_prefix="retrieval")


def question_embedding_start(question: str) -> Future:
    """Start embedding the customer's question on a worker thread; its result is its `QueryEmbedding`
    (both models of the ensemble, run side by side).

    The view starts it as soon as the request is authenticated and valid, so
    that the models run while the bot, the conversation and the message are
    read and written (onnxruntime releases the GIL while it computes).
    """
    return _embedding_pool.submit(query_embeddings, question)


def _search_in_worker(*, tenant, bot, query: str, question_embedding: Future) -> list:
    try:
        return search(tenant=tenant, bot=bot, query=query, query_vector=question_embedding.result)
    finally:
        # Like a request's: closed (or given back to the pool) when done, never left open in an idle thread.
        connection.close()


def retrieval_start(*, tenant, bot: Bot, query: str, question_embedding: Future | None = None) -> Future:
    """Start `knowledge.selectors.search` for `query`; its result is the passages.

    It runs on a worker thread (its own connection) so that it overlaps
    storing the question — except inside a transaction (tests, a caller's
    atomic block), whose uncommitted rows another connection could not see:
    then it runs here and now. `question_embedding` is the question's
    embedding under way (`question_embedding_start`), started here if None.
    """
    if question_embedding is None:
        question_embedding = question_embedding_start(query)
    if connection.in_atomic_block:
        future: Future = Future()
        try:
            future.set_result(search(tenant=tenant, bot=bot, query=query, query_vector=question_embedding.result))
        except Exception as exc:
            future.set_exception(exc)
        return future
    return _retrieval_pool.submit(
        _search_in_worker, tenant=tenant, bot=bot, query=query, question_embedding=question_embedding
    )


def _earlier_questions(conversation: Conversation | None, history: list[dict] | None, question: str) -> list[str]:
    """The customer's messages before `question` that a follow-up may continue (oldest first); read from the
    database only when the question looks like a follow-up, so a standalone question costs nothing more."""
    if history is not None:
        return [m["content"] for m in history if m["role"] == "user"][-CONTEXT_TURNS:]
    if conversation is None or not looks_like_follow_up(question):
        return []
    return selectors.conversation_user_texts(conversation=conversation, limit=CONTEXT_TURNS)[::-1]


def _done_result(future: Future | None):
    """The future's result if it is done and succeeded, else None."""
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()


def source_of(passage) -> dict:
    return {
        "document_id": passage.document_id,
        "title": passage.title,
        "chunk_id": passage.chunk_id,
        "score": round(float(passage.score), 4),
        "snippet": passage.snippet,
    }


def curated_source(match: CuratedMatch) -> dict:
    """A curated answer as the answer's one source: no document or chunk, the answer's id instead."""
    return {
        "document_id": None,
        "title": match.answer.question,
        "chunk_id": None,
        "score": round(match.similarity, 4),
        "snippet": match.wording,
        "answer_id": match.answer.public_id,
    }


def reply_prepare(
    *,
    tenant,
    bot: Bot,
    user_message: str,
    conversation: Conversation | None = None,
    metadata: dict | None = None,
    end_user_id: str = "",
    history: list[dict] | None = None,
    extra_instructions: tuple[str, ...] = (),
    temperature: float | None = None,
    max_tokens: int | None = None,
    started_at: float | None = None,
    question_embedding: Future | None = None,
    visitor_hash: str = "",
    handoff: bool = False,
) -> PreparedReply:
    """Store the customer's message, retrieve passages and build the prompt (step 1 of a reply).

    `history` replaces the stored conversation as the prompt's history (the
    OpenAI-shaped endpoint, whose clients send it); either way it is cut to
    `CHAT_HISTORY_TOKEN_BUDGET` tokens, newest messages kept.
    `question_embedding`: `question_embedding_start(user_message)`, when the caller started it early.

    Handoff (`conversations.handoff`): in a conversation with a person the
    message is stored and the result is `silent` (no answer); a message that
    asks for a person (`handoff`, or the bot's phrases) hands the conversation
    off and is answered with the bot's handoff notice, verbatim. A closed
    conversation takes no more messages (409 `conversation_closed`).
    """
    started_at = started_at or time.perf_counter()
    if bot.status != Bot.Status.ACTIVE:
        raise ConflictError(f"The bot {bot.public_id} is disabled.", code="bot_disabled", param="bot_id")
    status = conversation.status if conversation is not None else Conversation.Status.BOT
    if status == Conversation.Status.CLOSED:
        raise ConflictError(
            f"The conversation {conversation.public_id} is closed; start a new one.",
            code="conversation_closed",
            param="conversation_id",
        )
    silent = status == Conversation.Status.HANDOFF
    hand_off = not silent and (handoff or handoff_phrase_matched(bot=bot, text=user_message))
    provider = get_provider()
    context = (
        ""
        if silent or hand_off
        else follow_up_context(user_message, _earlier_questions(conversation, history, user_message))
    )
    # Retrieval (embedding the question, then the search) overlaps the writes and reads below.
    retrieval = follow_up = None
    if not (silent or hand_off):
        if question_embedding is None:
            question_embedding = question_embedding_start(user_message)
        retrieval = retrieval_start(tenant=tenant, bot=bot, query=user_message, question_embedding=question_embedding)
        # A follow-up is also searched as a standalone query: the question it continues, then it.
        if context:
            follow_up = retrieval_start(tenant=tenant, bot=bot, query=f"{context} {user_message}")
    try:
        conversation, message, created = user_message_record(
            tenant=tenant,
            bot=bot,
            conversation=conversation,
            content=user_message,
            metadata=metadata or {},
            end_user_id=end_user_id,
            visitor_hash=visitor_hash,
        )
    except BaseException:
        for search_under_way in (retrieval, follow_up):
            if search_under_way is not None:
                search_under_way.cancel()
        raise
    if silent:
        # The agents watching the conversation see the customer's message as it arrives.
        conversation_broadcast(
            public_id=conversation.public_id, event="message.created", data=message_event_data(message)
        )
        return PreparedReply(
            tenant=tenant,
            bot=bot,
            conversation=conversation,
            user_message=message,
            assistant_id="",
            provider=provider,
            request=None,
            sources=[],
            model="",
            started_at=started_at,
            conversation_created=created,
            silent=True,
        )
    if hand_off:
        reason = Conversation.HandoffReason.REQUESTED if handoff else Conversation.HandoffReason.PHRASE
        conversation_handoff(conversation=conversation, reason=reason)
        conversation_broadcast(
            public_id=conversation.public_id, event="message.created", data=message_event_data(message)
        )
        notice = handoff_settings(bot).get("message") or DEFAULT_HANDOFF_MESSAGE
        provider = CannedProvider(text=notice, model="handoff")
    if history is None:
        history = (
            []
            if created
            else selectors.history_messages(
                conversation=conversation, before_id=message.id, limit=settings.CHAT_HISTORY_MAX_MESSAGES
            )
        )
    history = history_within_budget(history, settings.CHAT_HISTORY_TOKEN_BUDGET)
    curated = None
    try:
        if retrieval is not None:
            # A curated answer that matches wins over the documents: said verbatim, cited as itself.
            curated = curated_answer_match(bot=bot, question=user_message, query_vector=question_embedding.result)
        if curated is not None:
            for search_under_way in (retrieval, follow_up):
                if search_under_way is not None:
                    search_under_way.cancel()
            curated_answer_used(curated=curated.answer)
            provider = CannedProvider(text=curated.answer.answer, model="curated")
            passages = []
        else:
            passages = retrieval.result() if retrieval is not None else []
            if follow_up is not None:
                passages = passages_fuse(passages, follow_up.result(), top_k=max(len(passages), 1))
    except EmbeddingError as exc:
        raise UpstreamError("The embedding service failed, so the question could not be searched.") from exc
    embedded = _done_result(question_embedding)
    grounding = provider.ground(
        query=user_message,
        passages=answerable_passages(bot=bot, passages=passages),
        context=context,
        # The providers compare sentences with the configured model: its vector.
        query_vector=embedded.vector if embedded is not None else None,
    )
    passages = grounding.passages
    model = provider.model_for(bot)
    request = ProviderRequest(
        model=model,
        messages=build_messages(
            instructions=bot.instructions,
            fallback_message=bot.fallback_message,
            passages=passages,
            history=history,
            user_message=user_message,
            extra_instructions=extra_instructions,
        ),
        temperature=bot.temperature if temperature is None else temperature,
        max_tokens=bot.max_tokens if max_tokens is None else max_tokens,
        query=user_message,
        passages=tuple(passages),
        fallback_message=bot.fallback_message,
        grounded_answer=grounding.answer,
    )
    return PreparedReply(
        tenant=tenant,
        bot=bot,
        conversation=conversation,
        user_message=message,
        assistant_id=new_public_id("msg"),
        provider=provider,
        request=request,
        sources=[curated_source(curated)] if curated is not None else [source_of(passage) for passage in passages],
        model=model,
        started_at=started_at,
        conversation_created=created,
    )


def _is_fallback(content: str, fallback_message: str) -> bool:
    def normalise(text: str) -> str:
        return " ".join(text.strip().strip("\"'“”").split()).casefold()

    return bool(content.strip()) and normalise(content) == normalise(fallback_message)


def citation_renumberer(prepared: PreparedReply) -> CitationRenumberer | None:
    """The rewriter of the answer's citation markers, for a provider whose model cites numbered passages."""
    if not prepared.provider.cites_passages or not prepared.request.passages:
        return None
    return CitationRenumberer(len(prepared.request.passages))


def answer_sources(*, prepared: PreparedReply, content: str, citations: CitationRenumberer | None) -> list[dict]:
    """The answer's sources: none for the fallback message, else the passages it cites (see conversations.citations)
    or, without markers, every passage it was given."""
    if _is_fallback(content, prepared.bot.fallback_message):
        return []
    if citations is None:
        return prepared.sources
    return [source_of(passage) for passage in citations.cited_passages(prepared.request.passages)]


def reply_finish(
    *,
    prepared: PreparedReply,
    content: str,
    usage: Usage | None,
    status: str,
    latency_ms: int,
    model: str | None = None,
    citations: CitationRenumberer | None = None,
) -> Message:
    """Store the assistant's message (step 3 of a reply); emits `message.created`.

    Usage comes from the provider's report, or is counted with the tokenizer
    when it gave none (always for the extractive provider). `content` is the
    answer with its markers already renumbered by `citations`, which says
    which passages it cites (its sources).
    """
    if usage is None:
        prompt_tokens = count_prompt_tokens(prepared.request.messages)
        completion_tokens = count_tokens(content)
    else:
        prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
    message = Message(
        public_id=prepared.assistant_id,
        tenant=prepared.tenant,
        bot=prepared.bot,
        conversation=prepared.conversation,
        role=Message.Role.ASSISTANT,
        content=content,
        sources=answer_sources(prepared=prepared, content=content, citations=citations),
        model=model or prepared.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=max(0, latency_ms),
        status=status,
        is_fallback=_is_fallback(content, prepared.bot.fallback_message),
    )
    sql.assistant_message_insert(message=message, conversation=prepared.conversation)
    if message.is_fallback:
        handoff_after_fallback(conversation=prepared.conversation, bot=prepared.bot)
    return message


def elapsed_ms(started_at: float) -> int:
    return int((time.perf_counter() - started_at) * 1000)


def reply_generate(prepared: PreparedReply) -> Message:
    """Ask the provider for the whole answer and store it (steps 2 and 3).

    An upstream failure is stored as a `failed` assistant message, then re-raised (502/504).
    """
    try:
        completion = prepared.provider.complete(prepared.request)
    except UpstreamError:
        reply_finish(
            prepared=prepared,
            content="",
            usage=None,
            status=Message.Status.FAILED,
            latency_ms=elapsed_ms(prepared.started_at),
        )
        raise
    citations = citation_renumberer(prepared)
    return reply_finish(
        prepared=prepared,
        content=completion.content if citations is None else citations.rewrite(completion.content),
        usage=completion.usage,
        status=Message.Status.COMPLETE,
        latency_ms=elapsed_ms(prepared.started_at),
        model=completion.model,
        citations=citations,
    )


def chat_reply_start(
    *,
    tenant,
    bot_id: str,
    user_message: str,
    conversation_id: str | None = None,
    metadata: dict | None = None,
    client_history: list[dict] | None = None,
    bot_param: str = "bot_id",
    started_at: float | None = None,
    publishable_key=None,
    visitor=None,
    **options,
) -> PreparedReply:
    """The one entry point of a customer's message, whichever door it came through.

    The native and OpenAI-shaped views and the realtime websocket call this and
    only translate shapes: it starts embedding the question at once, finds the
    bot and conversation (another tenant's → 404; `bot_param` names the field
    in the error), then does step 1 of the reply (`reply_prepare`); the caller
    generates or streams the answer from what it returns. `client_history`
    (OpenAI's clients send the history) replaces the stored history when it
    holds messages or the conversation is new; `options` go to `reply_prepare`.

    With a `publishable_key` (the chat widget) the message is held to the
    key's size limit, only the key's bots and the `visitor`'s own
    conversations are found, a new conversation is bound to the visitor, and
    its end user is the visitor's verified user id — never one from metadata,
    which anyone's browser could fill in.
    """
    if publishable_key is not None:
        limit = publishable_key.limit("max_message_chars")
        if len(user_message) > limit:
            raise ValidationError(
                f"The message is {len(user_message)} characters; this chat takes at most {limit}.",
                code="message_too_long",
                param="message",
            )
        metadata = {k: v for k, v in (metadata or {}).items() if k not in END_USER_METADATA_KEYS}
        options.update(end_user_id=visitor.user_id, visitor_hash=visitor.visitor_hash)
    question_embedding = question_embedding_start(user_message)
    bot, conversation = selectors.chat_target_get(
        tenant=tenant,
        bot_id=bot_id,
        conversation_id=conversation_id,
        bot_param=bot_param,
        publishable_key=publishable_key,
        visitor=visitor,
    )
    history = client_history if client_history is not None and (client_history or conversation is None) else None
    return reply_prepare(
        tenant=tenant,
        bot=bot,
        conversation=conversation,
        user_message=user_message,
        metadata=metadata,
        history=history,
        started_at=started_at,
        question_embedding=question_embedding,
        **options,
    )


# --- conversations and feedback -----------------------------------------------------------


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation with its messages and leads."""
    conversation.delete()


def message_feedback_set(*, message: Message, rating: str | None, comment: str | None = None) -> Message:
    """Rate an assistant message up, down or not at all (None), with an optional comment."""
    if message.role != Message.Role.ASSISTANT:
        # 409, not 400: the request is well formed; the message it names is not one that takes feedback.
        raise ConflictError(
            "Feedback is for the assistant's messages only.", code="feedback_not_allowed", param="message_id"
        )
    message.feedback_rating = rating
    fields = ["feedback_rating"]
    if comment is not None:
        message.feedback_comment = comment
        fields.append("feedback_comment")
    message.save(update_fields=fields)
    return message
