"""Knowledge base writes for documents: create (file, text, URL), reindex, delete, the stale sweep.

Creating or reindexing a document queues its ingestion after commit
(`knowledge.queueing`); the ingestion itself is `knowledge.services.ingestion`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.text import get_valid_filename

from bothero import netguard
from bothero.errors import ApplicationError, PlanLimitError, ValidationError
from bothero.ids import new_public_id
from knowledge import parsing, queueing, sql
from knowledge.events import document_event_data
from knowledge.models import Chunk, Document
from knowledge.services.bot_indexes import bot_indexes_queue_if_needed
from webhooks.services import event_emit

logger = logging.getLogger(__name__)

BYTES_PER_MB = 1024 * 1024


# --------------------------------------------------------------------------
# Creating documents
# --------------------------------------------------------------------------


def document_create_from_file(
    *, tenant, bot, data: bytes, filename: str, title: str | None = None, metadata: dict | None = None
) -> Document:
    """Store an uploaded file and queue its ingestion.

    The type is judged from the bytes (415 `unsupported_file_type` otherwise).
    The same bytes already uploaded to this bot give back that document with
    `document.duplicate = True` instead of a new one.
    """
    filename = safe_filename(filename)
    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise ApplicationError(
            f"The file is {len(data):,} bytes; the limit is {settings.MAX_UPLOAD_BYTES:,} bytes.",
            code="file_too_large",
            param="file",
            status_code=413,
        )
    if not data.strip():
        raise ValidationError("The file is empty.", code="empty_file", param="file")
    content_type = parsing.detect_content_type(data)
    if content_type is None:
        raise ApplicationError(
            f"“{filename}” is not a supported document: PDF, DOCX, HTML, Markdown, CSV or UTF-8 plain text "
            "(judged by its content, not its name).",
            code="unsupported_file_type",
            param="file",
            status_code=415,
        )
    sha256 = hashlib.sha256(data).hexdigest()
    existing = _duplicate_of(bot=bot, sha256=sha256)
    if existing is not None:
        return existing
    public_id = new_public_id("doc")
    # Written before the row exists, so the task never sees a document without its file;
    # removed again if the row is not created.
    path = default_storage.save(f"knowledge/{tenant.public_id}/{public_id}/{filename}", ContentFile(data))
    try:
        document = _document_insert(
            tenant=tenant,
            bot=bot,
            public_id=public_id,
            title=(title or filename)[:255],
            source_type=Document.SourceType.FILE,
            filename=filename,
            content_type=content_type,
            size_bytes=len(data),
            content_sha256=sha256,
            metadata=metadata or {},
            file=path,
        )
    except BaseException:
        stored_file_delete(path)
        raise
    if document.duplicate:
        stored_file_delete(path)
    return document


def document_create_from_text(*, tenant, bot, title: str, text: str, metadata: dict | None = None) -> Document:
    """Create a document from raw text and queue its ingestion (after commit; eager when Celery is).

    Same duplicate rule as files: the same text in the same bot gives back
    the existing document (`document.duplicate = True`). In tests that use the
    `db` fixture, wrap the call in `django_capture_on_commit_callbacks(execute=True)`
    so the queued ingestion runs.
    """
    data = text.encode("utf-8")
    if not text.strip():
        raise ValidationError("The text is empty.", code="empty_text", param="text")
    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise ApplicationError(
            f"The text is {len(data):,} bytes; the limit is {settings.MAX_UPLOAD_BYTES:,} bytes.",
            code="file_too_large",
            param="text",
            status_code=413,
        )
    sha256 = hashlib.sha256(data).hexdigest()
    existing = _duplicate_of(bot=bot, sha256=sha256)
    if existing is not None:
        return existing
    return _document_insert(
        tenant=tenant,
        bot=bot,
        title=title[:255],
        source_type=Document.SourceType.TEXT,
        content_type=parsing.detect_content_type(data) or parsing.TEXT_MIME,
        size_bytes=len(data),
        content_sha256=sha256,
        metadata=metadata or {},
        text=text,
    )


def document_create_from_url(
    *, tenant, bot, url: str, title: str | None = None, metadata: dict | None = None
) -> Document:
    """Queue the download and ingestion of a web page or file.

    The URL is checked now (http(s), public addresses unless ALLOW_PRIVATE_URLS)
    and again on every hop of the download. The same URL already added to
    this bot gives back that document (`document.duplicate = True`); the
    content hash is known, and checked against the bot's other documents, only
    after the download.
    """
    try:
        netguard.check_url(url, allow_private=settings.ALLOW_PRIVATE_URLS, must_resolve=False)
    except netguard.UnsafeURLError as exc:
        raise ValidationError(exc.message, code=exc.code, param="url") from None
    existing = Document.objects.filter(bot=bot, source_url=url).select_related("bot").first()
    if existing is not None:
        existing.duplicate = True
        return existing
    return _document_insert(
        tenant=tenant,
        bot=bot,
        title=(title or url)[:255],
        source_type=Document.SourceType.URL,
        source_url=url,
        metadata=metadata or {},
    )


def safe_filename(filename: str) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    with contextlib.suppress(Exception):
        name = get_valid_filename(name)
    stem, ext = os.path.splitext(name)
    return (stem[:100] + ext[:20]) or "upload"


def _duplicate_of(*, bot, sha256: str) -> Document | None:
    existing = Document.objects.filter(bot=bot, content_sha256=sha256).select_related("bot").first()
    if existing is not None:
        existing.duplicate = True
    return existing


@transaction.atomic
def _document_insert(*, tenant, bot, **fields) -> Document:
    # Lock the tenant row: two concurrent uploads cannot both pass the plan limits,
    # and the second of two identical uploads sees the first one's row.
    type(tenant).objects.select_for_update().filter(pk=tenant.pk).first()
    sha256 = fields.get("content_sha256")
    if sha256:
        existing = _duplicate_of(bot=bot, sha256=sha256)
        if existing is not None:
            return existing
    _check_plan_limits(tenant=tenant, new_bytes=fields.get("size_bytes", 0))
    document = Document(tenant=tenant, bot=bot, **fields)
    document.save()
    document.duplicate = False
    _queue_ingestion(document)
    return document


def _check_plan_limits(*, tenant, new_bytes: int) -> None:
    plan = tenant.plan
    if plan.max_documents is not None and Document.objects.filter(tenant=tenant).count() >= plan.max_documents:
        raise PlanLimitError(
            f"Your {plan.name} plan allows {plan.max_documents} documents. Delete some or upgrade your plan.",
            code="plan_limit_reached",
        )
    if plan.max_storage_mb is not None:
        used = Document.objects.filter(tenant=tenant).aggregate(total=Sum("size_bytes"))["total"] or 0
        if used + new_bytes > plan.max_storage_mb * BYTES_PER_MB:
            raise PlanLimitError(
                f"Your {plan.name} plan allows {plan.max_storage_mb} MB of documents; "
                f"{used / BYTES_PER_MB:.1f} MB are used and this one needs {new_bytes / BYTES_PER_MB:.1f} MB.",
                code="plan_limit_reached",
            )


def _queue_ingestion(document: Document) -> None:
    queueing.document_ingest_on_commit(document.pk)


# --------------------------------------------------------------------------
# Reindex, delete, sweep
# --------------------------------------------------------------------------


@transaction.atomic
def document_reindex(*, document: Document) -> Document:
    """Queue the document for ingestion again (re-download, re-parse, re-embed).

    Its chunks go now, with its `ready` status; a run still working on it
    loses its claim and discards its results. URL documents are downloaded again.
    """
    document = Document.objects.select_for_update().select_related("bot", "tenant").get(pk=document.pk)
    chunks_delete(document=document)
    _reset_for_queue(document)
    document.save()
    _queue_ingestion(document)
    return document


def document_content_replace(*, document: Document, data: bytes, title: str | None = None) -> Document:
    """Give a file document new bytes (a website page that changed) and queue it to be parsed and embedded again.

    Its chunks go now; the storage limit applies to the new size. The old file is removed after commit.
    """
    old_path = document.file.name
    path = default_storage.save(
        f"knowledge/{document.tenant.public_id}/{document.public_id}/{document.filename or 'page.html'}",
        ContentFile(data),
    )
    try:
        with transaction.atomic():
            tenant = type(document.tenant).objects.select_for_update().select_related("plan").get(pk=document.tenant_id)
            plan = tenant.plan
            if plan.max_storage_mb is not None:
                used = Document.objects.filter(tenant=tenant).exclude(pk=document.pk).aggregate(total=Sum("size_bytes"))
                if (used["total"] or 0) + len(data) > plan.max_storage_mb * BYTES_PER_MB:
                    raise PlanLimitError(
                        f"Your {plan.name} plan allows {plan.max_storage_mb} MB of documents.",
                        code="plan_limit_reached",
                    )
            document = Document.objects.select_for_update().select_related("bot", "tenant").get(pk=document.pk)
            chunks_delete(document=document)
            _reset_for_queue(document)
            document.file = path
            document.size_bytes = len(data)
            document.content_sha256 = hashlib.sha256(data).hexdigest()
            document.content_type = parsing.detect_content_type(data) or ""
            if title:
                document.title = title[:255]
            document.save()
            _queue_ingestion(document)
    except BaseException:
        stored_file_delete(path)
        raise
    if old_path and old_path != path:
        transaction.on_commit(lambda: stored_file_delete(old_path))
    return document


def chunks_delete(*, document: Document) -> None:
    """Delete the document's chunks and take them out of its bot's full-text statistics (in the caller's transaction)."""
    count = Chunk.objects.filter(document=document).count()
    if count:
        lexeme_stats_change(document=document, sign=-1, chunk_count=count)
        Chunk.objects.filter(document=document).delete()


# Adds (or removes) the document's chunks to the bot's document frequencies. Rows are
# written in lexeme order, so concurrent writers for one bot lock them in the same order.


def lexeme_stats_change(*, document: Document, sign: int, chunk_count: int) -> None:
    """Add (sign=+1) or remove (-1) the document's `chunk_count` stored chunks in its bot's full-text statistics."""
    chunks_query = f"SELECT search_vector FROM knowledge_chunk WHERE document_id = {int(document.pk)}"
    with connection.cursor() as cursor:
        cursor.execute(
            sql.LEXEME_STATS_CHANGE,
            {"bot_id": document.bot_id, "sign": sign, "chunks_query": chunks_query, "total": chunk_count},
        )
    # Where a bot's chunk count changes (ingestion, reindex, deletion): it may cross a threshold of its own indexes.
    bot_indexes_queue_if_needed(bot_id=document.bot_id)


def _reset_for_queue(document: Document) -> None:
    document.status = Document.Status.QUEUED
    document.progress = 0
    document.chunk_count = 0
    document.error_code = ""
    document.error_message = ""
    document.claim_token = ""
    document.claimed_at = None
    document.ready_at = None


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Delete the document, its chunks and (after commit) its stored file."""
    path = document.file.name
    chunks_delete(document=document)
    document.delete()
    if path:
        transaction.on_commit(lambda: stored_file_delete(path))


def stored_file_delete(path: str) -> None:
    default_storage.delete(path)
    # Each document's file lives in its own directory; remove it when empty.
    with contextlib.suppress(NotImplementedError, OSError):
        os.rmdir(os.path.dirname(default_storage.path(path)))


def documents_requeue_stale(*, now=None, waiting: set[int] | None = None) -> int:
    """Requeue work that nobody is doing; returns how many documents were requeued (or given up).

    A `processing` claim whose heartbeat stopped more than
    `KNOWLEDGE_CLAIM_STALE_SECONDS` ago belongs to a dead run (a live one
    renews it every `KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS`). A `queued`
    document untouched for `KNOWLEDGE_QUEUED_STALE_SECONDS` whose message is
    not waiting in the broker (`waiting`: document ids found in the queue)
    lost it: the broker was down after the upload committed, or Redis lost
    its data. A document that has been claimed more than
    `KNOWLEDGE_INGEST_MAX_RETRIES` + 1 times (its runs keep dying, e.g. out
    of memory) is failed with `ingestion_abandoned` instead of looping.
    """
    now = now or timezone.now()
    waiting = waiting or set()
    stale_claim = now - timedelta(seconds=stale_claim_seconds())
    stale_queue = now - timedelta(seconds=settings.KNOWLEDGE_QUEUED_STALE_SECONDS)
    candidates = Document.objects.filter(
        Q(status=Document.Status.PROCESSING, claimed_at__lt=stale_claim)
        | Q(status=Document.Status.QUEUED, updated_at__lt=stale_queue)
    ).values_list("pk", flat=True)
    requeued = 0
    for pk in candidates:
        if pk in waiting:
            continue
        with transaction.atomic():
            document = (
                Document.objects.select_for_update(skip_locked=True)
                .select_related("tenant", "bot")
                .filter(pk=pk)
                .first()
            )
            if document is None or document.status not in (Document.Status.QUEUED, Document.Status.PROCESSING):
                continue
            if document.status == Document.Status.PROCESSING and document.claimed_at >= stale_claim:
                continue  # its heartbeat came back between the listing and the lock
            chunks_delete(document=document)
            if document.attempts > settings.KNOWLEDGE_INGEST_MAX_RETRIES:
                _document_abandon(document)
            else:
                _reset_for_queue(document)
                document.save()
                _queue_ingestion(document)
            requeued += 1
    if requeued:
        logger.warning("Requeued (or gave up on) %d stale knowledge documents", requeued)
    return requeued


def _document_abandon(document: Document) -> None:
    document.status = Document.Status.FAILED
    document.chunk_count = 0
    document.error_code = "ingestion_abandoned"
    document.error_message = (
        f"Ingestion was started {document.attempts} times and never finished (its worker stopped each time)."
    )
    document.claim_token = ""
    document.save()
    event_emit(tenant=document.tenant, type="document.failed", data=document_event_data(document))


def stale_claim_seconds() -> int:
    return settings.KNOWLEDGE_CLAIM_STALE_SECONDS
