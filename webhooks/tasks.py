"""Thin, idempotent Celery tasks, queued on `webhooks` (by `webhooks.queueing` and the beat entry).

They take ids; the services do the work.
"""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from webhooks import delivery

DB_RETRY = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


@shared_task(
    name="webhooks.dispatch_event",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=50,
    time_limit=60,
    **DB_RETRY,
)
def dispatch_event(event_id: int) -> None:
    delivery.event_dispatch(event_id=event_id)


@shared_task(
    name="webhooks.send_delivery",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=settings.WEBHOOK_TIMEOUT_SECONDS + 15,
    time_limit=settings.WEBHOOK_TIMEOUT_SECONDS + 25,
    **DB_RETRY,
)
def send_delivery(delivery_id: int) -> None:
    delivery.webhook_delivery_send(delivery_id=delivery_id)


@shared_task(
    name="webhooks.sweep",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
    **DB_RETRY,
)
def sweep() -> None:
    delivery.webhook_sweep()
