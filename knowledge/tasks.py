"""Celery tasks for the knowledge base: thin wrappers around `knowledge.services`.

`ingest_document` runs on the `ingestion` queue with late acknowledgement, so
a pool process that dies mid-run gets the message redelivered (same task id,
which reclaims the document). While it runs, a heartbeat renews its claim;
when a whole worker dies, the beat sweep (`requeue_stale_documents`, every
`KNOWLEDGE_SWEEP_INTERVAL_SECONDS`) requeues the document once the heartbeat
is `KNOWLEDGE_CLAIM_STALE_SECONDS` old, and requeues `queued` documents whose
message is gone (broker down at upload, Redis restarted without its data).
Transient failures (download, embedding API, database) are retried with
exponential backoff, then the document is marked failed; the retry path does
not need the database (it may be what failed).
"""

import contextlib
import logging
import random
import threading
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from knowledge import queueing, services
from knowledge.queueing import INGEST_DOCUMENT, INGESTION_QUEUE

logger = logging.getLogger(__name__)


def retry_countdown(retries: int) -> float:
    """10 s, 30 s, 90 s, 270 s, ... (by default) with ±20 % jitter so failed runs do not retry in step."""
    return settings.KNOWLEDGE_INGEST_RETRY_DELAY_SECONDS * 3**retries * random.uniform(0.8, 1.2)


@shared_task(
    bind=True,
    name=INGEST_DOCUMENT,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS,
    soft_time_limit=settings.KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS - 30,
    max_retries=settings.KNOWLEDGE_INGEST_MAX_RETRIES,
)
def ingest_document(self, document_id: int) -> str | None:
    """Parse, chunk, embed and index the document with this primary key; idempotent."""
    claim_token = self.request.id or f"local-{random.getrandbits(64):x}"
    try:
        with claim_heartbeat(document_id, claim_token, enabled=not self.request.is_eager):
            document = services.document_ingest(document_id=document_id, claim_token=claim_token)
    except SoftTimeLimitExceeded:
        services.document_fail(
            document_id=document_id,
            claim_token=claim_token,
            code="ingestion_timeout",
            message=f"Ingestion took longer than {settings.KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS - 30} seconds.",
        )
        return "failed"
    except (services.IngestionError, DatabaseError) as exc:
        code = getattr(exc, "code", "database_error")
        message = getattr(exc, "message", str(exc))
        # Eager runs (no broker) cannot wait for a retry: fail now, a reindex starts over.
        if self.request.is_eager or self.request.retries >= self.max_retries:
            logger.warning("Ingestion of document %s failed for good: %s", document_id, message)
            services.document_fail(document_id=document_id, claim_token=claim_token, code=code, message=message)
            return "failed"
        logger.warning("Ingestion of document %s failed, will retry: %s", document_id, message)
        countdown = retry_countdown(self.request.retries)
        # The retry (same task id) takes the claim back. Keep the sweep off it until then, if
        # the database answers; if it is what failed, the retry must not need it, and the sweep
        # requeues the document once the claim is stale.
        with contextlib.suppress(DatabaseError):
            until = timezone.now() + timedelta(seconds=countdown)
            services.document_claim_renew(document_id=document_id, claim_token=claim_token, until=until)
        raise self.retry(countdown=countdown, exc=exc, queue=INGESTION_QUEUE) from None
    except Exception as exc:
        logger.exception("Ingestion of document %s crashed", document_id)
        services.document_fail(
            document_id=document_id,
            claim_token=claim_token,
            code="ingestion_error",
            message=f"Ingestion failed unexpectedly ({type(exc).__name__}); it has been logged.",
        )
        return "failed"
    return None if document is None else document.status


@contextlib.contextmanager
def claim_heartbeat(document_id: int, claim_token: str, *, enabled: bool = True):
    """Renew the run's claim every KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS from a thread while the block runs.

    A run that dies stops the heartbeat, so the sweep can tell a dead run
    from a long one within KNOWLEDGE_CLAIM_STALE_SECONDS, whatever the task's
    time limit. A failed renewal (the database is down) is skipped: the
    next one tries again.
    """
    if not enabled:
        yield
        return
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(settings.KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS):
                try:
                    if not services.document_claim_renew(document_id=document_id, claim_token=claim_token):
                        return  # the claim is gone: the run finds out at its next step
                except DatabaseError as exc:
                    logger.warning("Heartbeat of document %s skipped: %s", document_id, exc)
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"claim-heartbeat-{document_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@shared_task(name="knowledge.requeue_stale_documents", acks_late=True)
def requeue_stale_documents() -> int:
    """Beat sweep: requeue documents whose ingestion died or whose message was lost."""
    return services.documents_requeue_stale(waiting=queueing.documents_waiting_in_broker())


@shared_task(
    name=queueing.SYNC_SOURCE,
    acks_late=True,
    time_limit=settings.KNOWLEDGE_SOURCE_SYNC_TIME_LIMIT_SECONDS,
)
def sync_source(source_id: int) -> dict | None:
    """Sync one website source (a run already syncing it makes this one a no-op)."""
    return services.website_source_sync(source_id=source_id)


@shared_task(name="knowledge.sync_due_sources")
def sync_due_sources() -> int:
    """Queue the website sources whose daily or weekly refresh is due (beat)."""
    due = services.website_sources_due()
    for source_id in due:
        services.website_source_sync_queue(source_id=source_id)
    return len(due)


@shared_task(
    name=queueing.SYNC_BOT_INDEXES,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.KNOWLEDGE_BOT_INDEX_TIME_LIMIT_SECONDS,
)
def sync_bot_indexes(bot_id: int) -> list[str]:
    """Build or drop the bot's own search indexes as its chunk count wants (idempotent; a redelivery after
    a dead build finds the index it left invalid and builds it again)."""
    return services.bot_indexes_sync(bot_id=bot_id)


@shared_task(name="knowledge.sync_all_bot_indexes")
def sync_all_bot_indexes() -> int:
    """Queue a sync for every bot whose own indexes are missing, invalid or no longer wanted (beat, hourly)."""
    bot_ids = services.bot_indexes_out_of_date()
    for bot_id in bot_ids:
        queueing.bot_indexes_sync_on_commit(bot_id)
    return len(bot_ids)


@shared_task(
    bind=True,
    name="knowledge.backfill_aux_embeddings",
    acks_late=True,
    time_limit=600,
    soft_time_limit=570,
)
def backfill_aux_embeddings(self) -> dict:
    """Give one batch of chunks stored without it the ensemble's second vector (beat); while the batch was full,
    queue the next one, behind whatever ingestion waits (a run that finds the lock taken stops its chain)."""
    result = services.chunks_aux_backfill()
    if result.more and not self.request.is_eager:
        self.apply_async(queue=INGESTION_QUEUE, retry_policy=queueing.PUBLISH_RETRY_POLICY)
    return {"status": result.status, "embedded": result.embedded, "documents_completed": result.documents_completed}
