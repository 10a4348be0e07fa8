"""Periodic housekeeping for tokens (run by Celery beat)."""

from celery import shared_task

from accounts.services import tokens_purge_expired


@shared_task(name="accounts.purge_expired_tokens", acks_late=True, time_limit=300, soft_time_limit=270)
def purge_expired_tokens() -> int:
    return tokens_purge_expired()
