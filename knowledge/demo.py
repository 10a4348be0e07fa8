"""The demo bot's knowledge: the Acme Widgets FAQ shipped in `knowledge/fixtures/demo_faq.md`.

`manage.py demo` calls `demo_knowledge_ensure`, which is idempotent: the FAQ is
deduplicated by its content hash, so running the demo again keeps one document.
It returns only once the document is `ready` (or has failed): eager ingestion
without a broker; with a broker, a running ingestion worker does the work, and
when none answers the ingestion runs right here.
"""

import secrets
import time
from pathlib import Path

from knowledge import queueing, services
from knowledge.models import Document

FAQ_PATH = Path(__file__).resolve().parent / "fixtures" / "demo_faq.md"
FAQ_TITLE = "Acme Widgets FAQ"
DONE = (Document.Status.READY, Document.Status.FAILED)


def demo_knowledge_ensure(*, tenant, bot, wait_seconds: float = 120.0) -> Document:
    """Give `bot` the demo FAQ (once) and return the document, ready unless its ingestion failed."""
    document = services.document_create_from_file(
        tenant=tenant, bot=bot, data=FAQ_PATH.read_bytes(), filename=FAQ_PATH.name, title=FAQ_TITLE
    )
    document.refresh_from_db()
    # An earlier version of the FAQ (other content, same title) gives way to this one.
    for outdated in Document.objects.filter(bot=bot, title=FAQ_TITLE).exclude(pk=document.pk):
        services.document_delete(document=outdated)
    if document.status == Document.Status.FAILED:
        document = services.document_reindex(document=document)
        document.refresh_from_db()
    if document.status in DONE:
        return document
    if _ingestion_worker_running():
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            document.refresh_from_db()
            if document.status in DONE:
                return document
            time.sleep(0.5)
    # No worker (or a stuck one): take the document back and ingest it in this process.
    if document.status == Document.Status.PROCESSING:
        services.document_reindex(document=document)
    services.document_ingest(document_id=document.pk, claim_token=f"demo-{secrets.token_hex(8)}")
    document.refresh_from_db()
    return document


def _ingestion_worker_running() -> bool:
    from bothero.celery import app

    if queueing.ingests_in_thread():
        return True  # a thread of this process ingests it (no broker)
    if app.conf.task_always_eager:
        return False
    try:
        replies = app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception:  # the broker is unreachable: nobody will pick the task up
        return False
    return any(queue.get("name") == "ingestion" for queues in replies.values() for queue in queues)
