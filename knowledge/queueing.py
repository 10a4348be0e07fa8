"""Queue knowledge work for the workers; services call this, never `knowledge.tasks`.

Tasks are looked up by name in the Celery app, so this module imports no task
module back: `knowledge.tasks` calls the services, the services queue through
here, and imports flow one way.
"""

import threading

from django.conf import settings
from django.db import connections, transaction

from bothero.celery import task_by_name

INGESTION_QUEUE = "ingestion"
INGEST_DOCUMENT = "knowledge.ingest_document"


def ingests_in_thread() -> bool:
    """Whether ingestion runs on a thread of this process: no broker (eager Celery) and `KNOWLEDGE_INGEST_IN_THREAD`."""
    return settings.KNOWLEDGE_INGEST_IN_THREAD and task_by_name(INGEST_DOCUMENT).app.conf.task_always_eager


def document_ingest_enqueue(document_id: int) -> None:
    """Send the ingestion of this document to the `ingestion` queue (a thread of this process without a broker)."""
    task = task_by_name(INGEST_DOCUMENT)
    if ingests_in_thread():
        # Not daemonic: a server stopping (Ctrl-C) finishes the document rather than leaving it `processing`.
        threading.Thread(target=_ingest_on_this_thread, args=(task, document_id), name=f"ingest-{document_id}").start()
        return
    task.apply_async((document_id,), queue=INGESTION_QUEUE)


def _ingest_on_this_thread(task, document_id: int) -> None:
    try:
        task.apply((document_id,))
    finally:
        connections.close_all()  # this thread's own connection


def document_ingest_on_commit(document_id: int) -> None:
    """Queue the ingestion once the caller's transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: document_ingest_enqueue(document_id))
