"""Thin, idempotent Celery tasks, queued on `webhooks` (by `webhooks.queueing` and the beat entry).

They take ids; the services do the work.
"""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, close_old_connections

from webhooks import delivery
from webhooks.durability import asynchronous_commit

DB_RETRY = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


def _fresh_connection(task) -> None:
    """In a worker, drop a broken or expired database connection, as Django does at the start of a request.

    Needed when CELERY_DB_REUSE_MAX keeps connections open between tasks; a no-op otherwise.
    Not when run eagerly: the connection is the caller's.
    """
    if not task.request.is_eager:
        close_old_connections()


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
    _fresh_connection(self)
    with asynchronous_commit():
        delivery.event_dispatch(event_id=event_id, send_if_single=True)


@shared_task(
    bind=True,
    name="webhooks.send_delivery",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=settings.WEBHOOK_TIMEOUT_SECONDS + 15,
    time_limit=settings.WEBHOOK_TIMEOUT_SECONDS + 25,
    **DB_RETRY,
)
def send_delivery(self, delivery_id: int) -> None:
    _fresh_connection(self)
    with asynchronous_commit():
        delivery.webhook_delivery_send(delivery_id=delivery_id)


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
    _fresh_connection(self)
    with asynchronous_commit():
        delivery.webhook_sweep()
