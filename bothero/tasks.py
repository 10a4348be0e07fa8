"""Periodic housekeeping for the API plumbing (run by Celery beat)."""

from celery import shared_task

from bothero.idempotency import idempotency_purge_expired


@shared_task(name="bothero.purge_idempotency_records", acks_late=True, time_limit=300, soft_time_limit=270)
def purge_idempotency_records() -> int:
    return idempotency_purge_expired()
