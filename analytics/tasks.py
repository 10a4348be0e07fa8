"""Celery tasks for the daily rollups: thin and idempotent (a rerun recomputes the same rows)."""

from datetime import UTC

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from accounts.models import Tenant
from analytics import selectors, services

ROLLUP_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": 5,
    "soft_time_limit": 10 * 60,
    "time_limit": 11 * 60,
}


@shared_task(name="analytics.rollup_due_tenants", **ROLLUP_TASK_OPTIONS)
def rollup_due_tenants() -> int:
    """Beat entry point: queue a rollup for every active tenant whose rollups stop before yesterday."""
    today = timezone.now().astimezone(UTC).date()
    queued = 0
    for tenant_id in selectors.tenants_due_for_rollup(today=today).iterator(chunk_size=1000):
        rollup_tenant.delay(tenant_id)
        queued += 1
    return queued


@shared_task(name="analytics.rollup_tenant", **ROLLUP_TASK_OPTIONS)
def rollup_tenant(tenant_id: int) -> int:
    """Roll up the tenant's missing days (and re-roll the recent ones); returns how many days were done."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    return len(services.rollup_tenant(tenant=tenant))
