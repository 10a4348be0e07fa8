"""Queue knowledge work for the workers; services call this, never `knowledge.tasks`.

Tasks are looked up by name in the Celery app, so this module imports no task
module back: `knowledge.tasks` calls the services, the services queue through
here, and imports flow one way.

Queueing never raises a broker failure into the caller (an upload that has
already committed): it is logged, and the beat sweep
(`knowledge.requeue_stale_documents`) queues the document again once its
`queued` row is KNOWLEDGE_QUEUED_STALE_SECONDS old and its message is not in
the broker. The database is the source of truth; a message is a wake-up call.
"""

import contextlib
import json
import logging
import threading
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connections, transaction
from kombu.exceptions import OperationalError

from bothero.celery import app, task_by_name

logger = logging.getLogger(__name__)

INGESTION_QUEUE = "ingestion"
INGEST_DOCUMENT = "knowledge.ingest_document"
SYNC_SOURCE = "knowledge.sync_source"
SYNC_BOT_INDEXES = "knowledge.sync_bot_indexes"

# Fail fast when the broker is unreachable: the upload has committed, and the sweep is the retry.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
BROKER_ERRORS = (OperationalError, ConnectionError, OSError, redis.RedisError)


def ingests_in_thread() -> bool:
    """Whether ingestion runs on a thread of this process: no broker (eager Celery) and `KNOWLEDGE_INGEST_IN_THREAD`."""
    return settings.KNOWLEDGE_INGEST_IN_THREAD and task_by_name(INGEST_DOCUMENT).app.conf.task_always_eager


def document_ingest_enqueue(document_id: int) -> bool:
    """Send the ingestion of this document to the `ingestion` queue (a thread of this process without a broker).

    False (logged) when the broker is unreachable.
    """
    task = task_by_name(INGEST_DOCUMENT)
    if ingests_in_thread():
        # Not daemonic: a server stopping (Ctrl-C) finishes the document rather than leaving it `processing`.
        threading.Thread(target=_ingest_on_this_thread, args=(task, document_id), name=f"ingest-{document_id}").start()
        return True
    try:
        task.apply_async((document_id,), queue=INGESTION_QUEUE, retry_policy=PUBLISH_RETRY_POLICY)
    except BROKER_ERRORS as exc:
        logger.warning("Could not queue document %s (%s); the knowledge sweep will pick it up", document_id, exc)
        return False
    return True


def _ingest_on_this_thread(task, document_id: int) -> None:
    try:
        task.apply((document_id,))
    finally:
        connections.close_all()  # this thread's own connection


def document_ingest_on_commit(document_id: int) -> None:
    """Queue the ingestion once the caller's transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: document_ingest_enqueue(document_id))


def documents_waiting_in_broker() -> set[int]:
    """Ids of the documents whose ingestion message waits in the broker's `ingestion` queue (Redis only).

    The sweep leaves these alone: an old `queued` document may simply be
    behind a backlog. With another broker, or Redis unreachable, the answer is
    empty and the sweep requeues; a duplicate message is harmless (the claim
    lets one run do the work, the others find nothing to do).
    """
    url = app.conf.broker_url or ""
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return set()
    waiting = set()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        for raw in client.lrange(INGESTION_QUEUE, 0, -1):
            headers = json.loads(raw).get("headers") or {}
            if headers.get("task") == INGEST_DOCUMENT:
                with contextlib.suppress(ValueError):
                    waiting.add(int(headers.get("argsrepr", "").strip("(,)")))
    except (redis.RedisError, ValueError) as exc:
        logger.warning("Could not read the ingestion queue (%s); requeueing every stale document", exc)
    return waiting


def source_sync_on_commit(source_id: int) -> None:
    """Queue a website source's sync once the caller's transaction commits (a missed one: the beat schedule)."""

    def enqueue():
        try:
            task_by_name(SYNC_SOURCE).apply_async(
                (source_id,), queue=INGESTION_QUEUE, retry_policy=PUBLISH_RETRY_POLICY
            )
        except BROKER_ERRORS as exc:
            logger.warning("Could not queue the sync of website source %s (%s)", source_id, exc)

    transaction.on_commit(enqueue)


def bot_indexes_sync_on_commit(bot_id: int) -> None:
    """Queue a sync of the bot's own search indexes once the caller's transaction commits (a missed one:
    the hourly sweep). Without a broker, as ingestion, on a thread of this process (a build takes minutes)."""

    def enqueue():
        task = task_by_name(SYNC_BOT_INDEXES)
        if ingests_in_thread():
            threading.Thread(target=_sync_on_this_thread, args=(task, bot_id), name=f"bot-indexes-{bot_id}").start()
            return
        try:
            task.apply_async((bot_id,), queue=INGESTION_QUEUE, retry_policy=PUBLISH_RETRY_POLICY)
        except BROKER_ERRORS as exc:
            logger.warning("Could not queue the index sync of bot %s (%s); the hourly sweep will", bot_id, exc)

    transaction.on_commit(enqueue)


def _sync_on_this_thread(task, bot_id: int) -> None:
    try:
        task.apply((bot_id,))
    finally:
        connections.close_all()  # this thread's own connection
