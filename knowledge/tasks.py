"""Celery tasks for the knowledge base: thin wrappers around `knowledge.services`.

`ingest_document` runs on the `ingestion` queue with late acknowledgement, so
a worker that dies mid-run gets the message redelivered (same task id, which
reclaims the document); transient failures (download, embedding API, database)
are retried with exponential backoff, then the document is marked failed.
"""

import logging
import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from knowledge import services
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
        services.document_release(document_id=document_id, claim_token=claim_token)
        raise self.retry(countdown=retry_countdown(self.request.retries), exc=exc, queue=INGESTION_QUEUE) from None
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


@shared_task(name="knowledge.requeue_stale_documents", acks_late=True)
def requeue_stale_documents() -> int:
    """Beat sweep: requeue documents whose ingestion died or whose message was lost."""
    return services.documents_requeue_stale()
