"""The periodic safety net (`webhooks.sweep`, Celery beat): what no dispatcher or worker finished.

`webhook_sweep` dispatches events no dispatcher took (broker down), re-queues
due retries, and returns deliveries whose worker died mid-attempt (lease
expired) to `pending`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webhooks import queueing
from webhooks.attempt import delivery_attempt_first
from webhooks.dispatch import events_dispatch
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.senders import get_senders

logger = logging.getLogger(__name__)

INTERRUPTED_ERROR = "Interrupted: the worker was lost before it recorded a result."


def deliveries_recover_interrupted(*, now: datetime | None = None) -> int:
    """Return deliveries whose lease expired mid-attempt (worker killed) to `pending`, due now.

    The lost attempt is logged as `interrupted` and counts towards the retry
    limit, so a delivery that kills its worker every time still ends.
    """
    now = now or timezone.now()
    stuck = list(
        Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_until__lt=now)
        .select_related("endpoint")
        .order_by("claimed_until")[: settings.WEBHOOK_SWEEP_BATCH_SIZE]
    )
    recovered = 0
    for delivery in stuck:
        exhausted = delivery.attempts > len(settings.WEBHOOK_RETRY_SCHEDULE)
        with transaction.atomic():
            updated = Delivery.objects.filter(
                pk=delivery.pk, status=Delivery.Status.SENDING, attempts=delivery.attempts, claimed_until__lt=now
            ).update(
                status=Delivery.Status.FAILED if exhausted else Delivery.Status.PENDING,
                next_attempt_at=None if exhausted else now,
                completed_at=now if exhausted else None,
                claimed_until=None,
                queued_at=None,
                last_response_code=None,
                last_duration_ms=None,
                last_error=INTERRUPTED_ERROR,
            )
            if updated:
                DeliveryAttempt.objects.get_or_create(
                    delivery_id=delivery.pk,
                    number=delivery.attempts,
                    defaults={
                        "outcome": DeliveryAttempt.Outcome.INTERRUPTED,
                        "started_at": delivery.last_attempt_at or now,
                        "url": delivery.endpoint.url,
                        "error": INTERRUPTED_ERROR,
                    },
                )
                recovered += 1
    return recovered


def webhook_sweep(*, in_background: bool = False) -> dict[str, int]:
    """The periodic safety net: recover interrupted attempts, dispatch missed events, queue due deliveries.

    Missed events are those older than `WEBHOOK_DISPATCH_GRACE_SECONDS` (a
    dispatcher may still be coming for younger ones), a batch per run; their
    attempts go to the sender threads in a worker (`in_background`).
    """
    recovered = deliveries_recover_interrupted()
    send = partial(get_senders().submit, delivery_attempt_first) if in_background else delivery_attempt_first
    older_than = timezone.now() - timedelta(seconds=settings.WEBHOOK_DISPATCH_GRACE_SECONDS)
    dispatched, _ids, _full = events_dispatch(
        send=send, limit=settings.WEBHOOK_SWEEP_BATCH_SIZE, created_before=older_than
    )
    queued = queueing.deliveries_send_enqueue(queueing.deliveries_claim_for_queue())
    if recovered or dispatched or queued:
        logger.info(
            "Webhook sweep: %s interrupted, %s events dispatched, %s deliveries queued.", recovered, dispatched, queued
        )
    return {"recovered": recovered, "dispatched": dispatched, "queued": queued}
