"""Queue knowledge work for the workers; services call this, never `knowledge.tasks`.

Tasks are looked up by name in the Celery app, so this module imports no task
module back: `knowledge.tasks` calls the services, the services queue through
here, and imports flow one way.
"""

from django.db import transaction

from bothero.celery import task_by_name

INGESTION_QUEUE = "ingestion"
INGEST_DOCUMENT = "knowledge.ingest_document"


def document_ingest_enqueue(document_id: int) -> None:
    """Send the ingestion of this document to the `ingestion` queue."""
    task_by_name(INGEST_DOCUMENT).apply_async((document_id,), queue=INGESTION_QUEUE)


def document_ingest_on_commit(document_id: int) -> None:
    """Queue the ingestion once the caller's transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: document_ingest_enqueue(document_id))
