"""Thin, idempotent Celery tasks, queued on `webhooks` (by `webhooks.queueing` and the beat entry).

They take ids; the services do the work.
"""

import threading
from contextlib import contextmanager

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown, worker_shutting_down
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from webhooks import senders
from webhooks.attempt import webhook_delivery_send
from webhooks.dispatch import event_dispatch, events_dispatch_pending
from webhooks.queueing import DISPATCH_EVENTS, SEND_DELIVERY
from webhooks.sweep import webhook_sweep

DB_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


@contextmanager
def _connection_dropped_on_error(task):
    """In a worker, close the database connection when it fails, so that the retry opens a fresh one.

    Workers keep connections between tasks (CELERY_DB_REUSE_MAX); rather than
    test each one before every task (a round trip), a broken one is dropped
    when it fails. Not when run eagerly: the connection is the caller's.
    """
    try:
        yield
    except (OperationalError, InterfaceError):
        if not task.request.is_eager:
            connection.close()
        raise


@shared_task(
    bind=True,
    name=DISPATCH_EVENTS,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=settings.WEBHOOK_DISPATCH_MAX_SECONDS + settings.WEBHOOK_DISPATCH_LINGER_SECONDS + 60,
    time_limit=settings.WEBHOOK_DISPATCH_MAX_SECONDS + settings.WEBHOOK_DISPATCH_LINGER_SECONDS + 90,
    **DB_RETRY,
)
def dispatch_events(self) -> None:
    with _connection_dropped_on_error(self):
        events_dispatch_pending(in_background=not self.request.is_eager, stop=_worker_stopping.is_set)


@shared_task(
    bind=True,
    name="webhooks.dispatch_event",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=settings.WEBHOOK_TIMEOUT_SECONDS + 45,
    time_limit=settings.WEBHOOK_TIMEOUT_SECONDS + 60,
    **DB_RETRY,
)
def dispatch_event(self, event_id: int) -> None:
    """One event (no longer queued by the app; kept for messages queued before `dispatch_events`)."""
    with _connection_dropped_on_error(self):
        event_dispatch(event_id=event_id)


@shared_task(
    bind=True,
    name=SEND_DELIVERY,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=settings.WEBHOOK_TIMEOUT_SECONDS + 15,
    time_limit=settings.WEBHOOK_TIMEOUT_SECONDS + 25,
    **DB_RETRY,
)
def send_delivery(self, delivery_id: int) -> None:
    with _connection_dropped_on_error(self):
        webhook_delivery_send(delivery_id=delivery_id)


@shared_task(
    bind=True,
    name="webhooks.sweep",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
    **DB_RETRY,
)
def sweep(self) -> None:
    with _connection_dropped_on_error(self):
        webhook_sweep(in_background=not self.request.is_eager)


_worker_stopping = threading.Event()


@worker_shutting_down.connect
def _stop_dispatching(**_kwargs) -> None:
    """A warm shutdown (SIGTERM) ends a dispatcher within a second; it queues another for a worker that stays.

    Sent in the worker's main process: it reaches a solo worker's dispatcher
    (the recommended set-up); a prefork child's dispatcher ends when its
    linger does.
    """
    _worker_stopping.set()


@worker_shutdown.connect
@worker_process_shutdown.connect
def _finish_attempts_in_flight(**_kwargs) -> None:
    """A warm shutdown records the attempts the sender threads are making before the process exits."""
    senders.shutdown()
