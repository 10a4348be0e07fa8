"""Ingestion: parse → chunk → embed → index one document, under a claim.

Ingestion runs in the Celery task `knowledge.ingest_document` and is safe to
run any number of times. A run first *claims* the document with a
conditional UPDATE (queued → processing, stamping its task id); slow work
(download, parse, embed) happens with no transaction open; the chunks are then
written in one transaction that also marks the document ready and re-checks
the claim. So a killed worker leaves the document `processing` with no chunks
(re-processable: the redelivered task has the same id and reclaims it, and a
beat sweep requeues claims older than the task's time limit), and a second
run replaces chunks instead of adding to them.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from bothero import netguard
from knowledge import parsing
from knowledge.chunking import chunk_sections
from knowledge.conf import auxiliary_embedder, configured_embedder, embedding_model_name
from knowledge.embeddings import EmbeddingError
from knowledge.events import document_event_data
from knowledge.models import Chunk, Document
from knowledge.sandbox import parse_in_subprocess
from knowledge.services.bot_indexes import chunks_skip_shared_graph
from knowledge.services.documents import (
    BYTES_PER_MB,
    chunks_delete,
    lexeme_stats_change,
    safe_filename,
    stale_claim_seconds,
    stored_file_delete,
)
from webhooks.services import event_emit

PROGRESS_CLAIMED = 5
PROGRESS_FETCHED = 10
PROGRESS_PARSED = 25
PROGRESS_EMBEDDING_START = 30
PROGRESS_EMBEDDING_END = 95


class IngestionError(Exception):
    """Ingestion stopped. `transient` errors are retried by the task; the others fail the document."""

    def __init__(self, code: str, message: str, *, transient: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


class ClaimLost(Exception):
    """Another run owns the document now (reindexed, requeued or deleted): stop without writing."""


# --------------------------------------------------------------------------
# Ingestion
# --------------------------------------------------------------------------


def document_ingest(*, document_id: int, claim_token: str) -> Document | None:
    """Parse, chunk, embed and index one document; the body of the ingestion task.

    Returns the document when this run finished it (ready or failed), None
    when there was nothing to do (another run owns it, it is already done,
    or it was deleted). Raises `IngestionError(transient=True)` for errors
    worth retrying, after leaving the document claimed by this run.
    """
    document = _document_claim(document_id=document_id, claim_token=claim_token)
    if document is None:
        return None
    try:
        return _ingest_claimed(document, claim_token)
    except ClaimLost:
        return None
    except IngestionError as exc:
        if exc.transient:
            raise
        return document_fail(document_id=document_id, claim_token=claim_token, code=exc.code, message=exc.message)
    except parsing.ParseError as exc:
        return document_fail(document_id=document_id, claim_token=claim_token, code=exc.code, message=exc.message)


def _document_claim(*, document_id: int, claim_token: str) -> Document | None:
    now = timezone.now()
    claimable = (
        Q(status=Document.Status.QUEUED)
        # A redelivery of the same task (its worker died mid-run) takes its own claim back.
        | Q(status=Document.Status.PROCESSING, claim_token=claim_token)
        | Q(status=Document.Status.PROCESSING, claimed_at__lt=now - timedelta(seconds=stale_claim_seconds()))
    )
    claimed = Document.objects.filter(claimable, pk=document_id).update(
        status=Document.Status.PROCESSING,
        claim_token=claim_token,
        claimed_at=now,
        attempts=F("attempts") + 1,
        progress=PROGRESS_CLAIMED,
        error_code="",
        error_message="",
        updated_at=now,
    )
    if not claimed:
        return None
    return Document.objects.select_related("tenant__plan", "bot").get(pk=document_id)


def _set_progress(document: Document, claim_token: str, progress: int, **fields) -> None:
    updated = Document.objects.filter(
        pk=document.pk, status=Document.Status.PROCESSING, claim_token=claim_token
    ).update(progress=progress, updated_at=timezone.now(), **fields)
    if not updated:
        raise ClaimLost
    document.progress = progress
    for name, value in fields.items():
        setattr(document, name, value)


def _ingest_claimed(document: Document, claim_token: str) -> Document | None:
    data = _document_bytes(document, claim_token)
    content_type = parsing.detect_content_type(data) if data.strip() else None
    if not data.strip():
        raise IngestionError(parsing.EMPTY_DOCUMENT, "The document is empty.")
    if content_type is None:
        raise IngestionError(
            parsing.UNSUPPORTED_FILE_TYPE,
            "The content is not a supported document: PDF, DOCX, HTML, Markdown, CSV or UTF-8 plain text.",
        )
    parsed = _parse(data, filename=document.filename)
    _set_progress(document, claim_token, PROGRESS_PARSED, content_type=parsed.content_type)

    embedder = configured_embedder()
    chunks = chunk_sections(
        parsed.sections,
        tokenizer=embedder.tokenizer,
        max_tokens=settings.KNOWLEDGE_CHUNK_TOKENS,
        overlap_tokens=settings.KNOWLEDGE_CHUNK_OVERLAP_TOKENS,
    )
    if not chunks:
        raise IngestionError(parsing.EMPTY_DOCUMENT, "The document contains no extractable text.")
    vectors, aux_vectors = _embed_chunks(document, claim_token, chunks, embedder, auxiliary_embedder())
    return _document_finish(
        document_id=document.pk,
        claim_token=claim_token,
        chunks=chunks,
        vectors=vectors,
        aux_vectors=aux_vectors,
        embedding_model=embedding_model_name(),
        embedding_dimension=embedder.dimension,
    )


def _document_bytes(document: Document, claim_token: str) -> bytes:
    if document.source_type == Document.SourceType.TEXT:
        return document.text.encode("utf-8")
    if document.source_type == Document.SourceType.URL:
        return _download(document, claim_token)
    try:
        with default_storage.open(document.file.name, "rb") as stored:
            return stored.read()
    except FileNotFoundError:
        raise IngestionError("file_missing", "The stored file of this document is missing; upload it again.") from None


def _download(document: Document, claim_token: str) -> bytes:
    try:
        fetched = netguard.fetch_url(
            document.source_url,
            allow_private=settings.ALLOW_PRIVATE_URLS,
            max_bytes=settings.KNOWLEDGE_URL_MAX_BYTES,
            timeout=settings.KNOWLEDGE_URL_TIMEOUT_SECONDS,
            headers={"User-Agent": "BotHero-Ingest/1.0"},
        )
    except netguard.UnsafeURLError as exc:
        raise IngestionError(exc.code, exc.message) from None
    except netguard.FetchError as exc:
        # Network errors, timeouts, 429 and 5xx may pass; 4xx and oversized bodies will not.
        transient = exc.code == netguard.FETCH_FAILED and (
            exc.status_code is None or exc.status_code == 429 or exc.status_code >= 500
        )
        raise IngestionError(exc.code, exc.message, transient=transient) from None
    data = fetched.content
    sha256 = hashlib.sha256(data).hexdigest()
    filename = safe_filename(os.path.basename(fetched.url.split("?", 1)[0].rstrip("/")) or "page")
    old_path = document.file.name
    path = default_storage.save(
        f"knowledge/{document.tenant.public_id}/{document.public_id}/{filename}", ContentFile(data)
    )
    try:
        _record_download(document, claim_token, path=path, filename=filename, data=data, sha256=sha256)
    except BaseException:
        stored_file_delete(path)
        raise
    if old_path and old_path != path:
        stored_file_delete(old_path)
    return data


@transaction.atomic
def _record_download(document: Document, claim_token: str, *, path: str, filename: str, data: bytes, sha256: str):
    # Under the tenant lock, like uploads: the storage limit and the duplicate rule hold.
    tenant = type(document.tenant).objects.select_for_update().select_related("plan").get(pk=document.tenant_id)
    plan = tenant.plan
    if plan.max_storage_mb is not None:
        used = Document.objects.filter(tenant=tenant).exclude(pk=document.pk).aggregate(total=Sum("size_bytes"))
        if (used["total"] or 0) + len(data) > plan.max_storage_mb * BYTES_PER_MB:
            raise IngestionError(
                "plan_limit_reached",
                f"The download is {len(data) / BYTES_PER_MB:.1f} MB, more than the storage left on your "
                f"{plan.name} plan ({plan.max_storage_mb} MB).",
            )
    other = Document.objects.filter(bot=document.bot_id, content_sha256=sha256).exclude(pk=document.pk).first()
    if other is not None:
        raise IngestionError(
            "duplicate_document", f"This bot already has a document with the same content: {other.public_id}."
        )
    _set_progress(
        document,
        claim_token,
        PROGRESS_FETCHED,
        file=path,
        filename=filename,
        size_bytes=len(data),
        content_sha256=sha256,
    )


def _parse(data: bytes, *, filename: str) -> parsing.ParsedDocument:
    # Every parse runs in a child process with a wall-clock limit and a memory cap (about
    # 0.1-0.3 s of start-up, small next to embedding): a hostile file cannot stall or bloat the worker.
    return parse_in_subprocess(
        data,
        filename=filename or None,
        timeout_seconds=settings.KNOWLEDGE_PARSE_TIMEOUT_SECONDS,
        memory_limit_mb=settings.KNOWLEDGE_PARSE_MEMORY_MB,
    )


def embedding_input(chunk) -> str:
    """What gets embedded for a chunk: its section heading gives the passage its context."""
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


def _embed_chunks(
    document: Document, claim_token: str, chunks, embedder, auxiliary
) -> tuple[np.ndarray, np.ndarray | None]:
    """Every chunk's vector from `embedder` and, when there is one, from the ensemble's `auxiliary` model."""
    batch_size = settings.KNOWLEDGE_EMBED_BATCH_SIZE
    texts = [embedding_input(chunk) for chunk in chunks]
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    aux_vectors = np.empty((len(texts), auxiliary.dimension), dtype=np.float32) if auxiliary is not None else None
    # Similar lengths in each batch means little padding: go through the whole document
    # shortest first, not only within each step.
    order = sorted(range(len(chunks)), key=lambda index: (chunks[index].token_count, len(texts[index])))
    # Bounded steps: progress is visible, memory is flat, and a lost claim stops the work early.
    step = batch_size * 4
    for first in range(0, len(order), step):
        indices = order[first : first + step]
        step_texts = [texts[index] for index in indices]
        try:
            vectors[indices] = embedder.embed(step_texts, batch_size=batch_size)
            if aux_vectors is not None:
                aux_vectors[indices] = auxiliary.embed(step_texts, batch_size=batch_size)
        except EmbeddingError as exc:
            raise IngestionError("embedding_failed", str(exc), transient=True) from None
        done = min(first + step, len(order))
        span = PROGRESS_EMBEDDING_END - PROGRESS_EMBEDDING_START
        _set_progress(document, claim_token, PROGRESS_EMBEDDING_START + span * done // len(order))
    return vectors, aux_vectors


@transaction.atomic
def _document_finish(
    *,
    document_id: int,
    claim_token: str,
    chunks,
    vectors: np.ndarray,
    aux_vectors: np.ndarray | None = None,
    embedding_model: str,
    embedding_dimension: int,
) -> Document:
    document = (
        Document.objects.select_for_update()
        .filter(pk=document_id, status=Document.Status.PROCESSING, claim_token=claim_token)
        .first()
    )
    if document is None:
        raise ClaimLost
    # Normally there are none (chunks only exist for ready documents); deleting makes a rerun
    # replace rather than add, whatever happened before.
    chunks_delete(document=document)
    # A bot with a valid graph of its own: its new chunks go into that graph alone.
    in_shared_index = not chunks_skip_shared_graph(bot_id=document.bot_id)
    Chunk.objects.bulk_create(
        [
            Chunk(
                tenant_id=document.tenant_id,
                bot_id=document.bot_id,
                document=document,
                position=chunk.position,
                text=chunk.text,
                heading=chunk.heading,
                page=chunk.page,
                token_count=chunk.token_count,
                embedding=vector,
                embedding_aux=aux_vector,
                in_shared_index=in_shared_index,
            )
            for chunk, vector, aux_vector in zip(
                chunks, vectors, aux_vectors if aux_vectors is not None else [None] * len(chunks), strict=True
            )
        ],
        batch_size=500,
    )
    lexeme_stats_change(document=document, sign=+1, chunk_count=len(chunks))
    now = timezone.now()
    document.status = Document.Status.READY
    document.progress = 100
    document.chunk_count = len(chunks)
    document.embedding_model = embedding_model
    document.embedding_dimension = embedding_dimension
    document.error_code = ""
    document.error_message = ""
    document.claim_token = ""
    document.ready_at = now
    document.save()
    event_emit(tenant=document.tenant, type="document.ready", data=document_event_data(document))
    return document


@transaction.atomic
def document_fail(*, document_id: int, claim_token: str, code: str, message: str) -> Document | None:
    """Mark the document failed if this run still owns it; emits `document.failed`."""
    document = (
        Document.objects.select_for_update()
        .select_related("tenant", "bot")
        .filter(pk=document_id, status=Document.Status.PROCESSING, claim_token=claim_token)
        .first()
    )
    if document is None:
        return None
    chunks_delete(document=document)
    document.status = Document.Status.FAILED
    document.chunk_count = 0
    document.error_code = code[:64]
    document.error_message = message[:2000]
    document.claim_token = ""
    document.save()
    event_emit(tenant=document.tenant, type="document.failed", data=document_event_data(document))
    return document


def document_claim_renew(*, document_id: int, claim_token: str, until=None) -> bool:
    """The claim's heartbeat: this run is alive (or, with `until`, will be back by then for a retry).

    False once the run no longer owns the document (reindexed, deleted, swept).
    """
    return bool(
        Document.objects.filter(pk=document_id, status=Document.Status.PROCESSING, claim_token=claim_token).update(
            claimed_at=until or timezone.now()
        )
    )
