"""One attempt of a delivery: claim it, send it, record the result, schedule the retry.

* `webhook_delivery_send` claims a retry with a conditional UPDATE
  (`pending` and due → `sending`, attempts + 1, a lease); a second worker's
  UPDATE matches no row and it stops. The HTTP request runs outside any
  transaction; its result is written only while the claim is still ours.
* `delivery_attempt_first` makes the first attempt of a delivery that the
  fan-out (`webhooks.dispatch`) created already claimed.

An endpoint failing for too long (or answering 410) is disabled here, with a
`webhook.disabled` event.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from webhooks import services, sql, transport
from webhooks.events import webhook_disabled_event_data
from webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint
from webhooks.signing import event_body, signed_headers

logger = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = (429, 503)


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + settings.WEBHOOK_CLAIM_GRACE_SECONDS)


def delivery_attempt_first(delivery: Delivery) -> Delivery | None:
    """Make the first attempt of a delivery that `events_dispatch` created claimed.

    An attempt that waited for a sender thread longer than half the claim
    grace (at least a second) is handed back instead, for the sweep to queue
    again: sent that late, it might not end within its lease, and the sweep
    could take it for lost and send it a second time.
    """
    now = timezone.now()
    if now - delivery.last_attempt_at > timedelta(seconds=max(settings.WEBHOOK_CLAIM_GRACE_SECONDS / 2, 1.0)):
        _claim_hand_back(delivery.pk, attempts=delivery.attempts)
        return None
    return _attempt(delivery, now)


def _claim_hand_back(delivery_id: int, *, attempts: int) -> None:
    """Undo a claim whose attempt was not made: `pending` again, due now, the attempt not counted."""
    Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENDING, attempts=attempts).update(
        status=Delivery.Status.PENDING,
        attempts=F("attempts") - 1,
        claimed_until=None,
        next_attempt_at=timezone.now(),
        queued_at=None,
    )


def _claim(delivery_id: int, now: datetime) -> Delivery | None:
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now).update(
        status=Delivery.Status.SENDING,
        attempts=F("attempts") + 1,
        claimed_until=lease_until(now),
        last_attempt_at=now,
        queued_at=None,
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    if not delivery.endpoint.enabled:
        # Disabled since it was queued: hand the attempt back; re-enabling resumes it.
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENDING, attempts=delivery.attempts).update(
            status=Delivery.Status.PENDING, attempts=F("attempts") - 1, claimed_until=None
        )
        return None
    return delivery


def webhook_delivery_send(*, delivery_id: int) -> Delivery | None:
    """Make the delivery's next attempt if it is due and no other worker is making it.

    Returns the delivery after the attempt, or None when there was nothing to do.
    """
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    return _attempt(delivery, now)


def _attempt(delivery: Delivery, now: datetime) -> Delivery | None:
    """Send the claimed attempt (`delivery.attempts`) and record what happened."""
    endpoint, event, number = delivery.endpoint, delivery.event, delivery.attempts
    body = event_body(event)
    headers = signed_headers(
        secrets=endpoint.signing_secrets(now), msg_id=event.public_id, timestamp=int(time.time()), body=body
    )
    result = transport.post(
        url=endpoint.url,
        body=body,
        headers=headers,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        allow_private=settings.ALLOW_PRIVATE_URLS,
    )
    try:
        recorded = _record_attempt(delivery=delivery, number=number, started_at=now, result=result)
    except IntegrityError:
        # The endpoint (and its deliveries) was deleted while the request was in flight.
        logger.info("Delivery %s was deleted during its attempt; result dropped.", delivery.pk)
        return None
    if recorded is None:
        delivery.refresh_from_db()  # the claim ran out and the sweep took the delivery back
    else:
        for name, value in recorded.items():
            setattr(delivery, name, value)
    return delivery


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def retry_delay(*, number: int, result: transport.PostResult, now: datetime) -> float | None:
    """Seconds until the next attempt after failed attempt `number`, or None when retries are exhausted."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if number > len(schedule):
        return None
    if result.status_code in RETRY_AFTER_STATUSES:
        asked = retry_after_seconds(result.headers.get("retry-after"), now)
        if asked is not None:
            return min(max(asked, 1.0), settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS)
    jitter = settings.WEBHOOK_RETRY_JITTER
    return schedule[number - 1] * random.uniform(1 - jitter, 1 + jitter)


def _record_attempt(
    *, delivery: Delivery, number: int, started_at: datetime, result: transport.PostResult
) -> dict | None:
    """Log the attempt, set the delivery's next step and the endpoint's health.

    Returns the delivery's new field values, or None when the claim was no
    longer ours (the lease ran out); the attempt is logged either way.
    """
    now = timezone.now()
    endpoint = delivery.endpoint
    error = result.error
    if result.status_code is not None and not result.succeeded:
        location = result.headers.get("location")
        error = f"Redirect to {location} not followed." if 300 <= result.status_code < 400 and location else ""
    gone = result.status_code == 410
    if result.succeeded:
        status, next_attempt_at = Delivery.Status.SUCCEEDED, None
    else:
        # A permanent failure (refused address, 404, 410, ...) is not retried on the schedule.
        delay = None if result.permanent else retry_delay(number=number, result=result, now=now)
        if delay is None:
            status, next_attempt_at = Delivery.Status.FAILED, None
        else:
            status, next_attempt_at = Delivery.Status.PENDING, now + timedelta(seconds=delay)
    changes = {
        "status": status,
        "next_attempt_at": next_attempt_at,
        "claimed_until": None,
        "last_response_code": result.status_code,
        "last_duration_ms": result.duration_ms,
        "last_error": error[:500],
        "completed_at": now if status in (Delivery.Status.SUCCEEDED, Delivery.Status.FAILED) else None,
    }
    updated = sql.delivery_attempt_record(
        delivery_id=delivery.pk,
        number=number,
        changes=changes,
        attempt={
            "outcome": DeliveryAttempt.Outcome.SUCCEEDED if result.succeeded else DeliveryAttempt.Outcome.FAILED,
            "started_at": started_at,
            "duration_ms": result.duration_ms,
            "url": endpoint.url,
            "response_status": result.status_code,
            "response_body": result.body,
            "error": error[:500],
        },
    )
    if not result.succeeded:
        _endpoint_record_failure(endpoint=endpoint, gone=gone, now=now)
    elif endpoint.failing_since is not None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
    return changes if updated else None


def _endpoint_record_failure(*, endpoint: WebhookEndpoint, gone: bool, now: datetime) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    if gone:
        webhook_endpoint_disable(endpoint=endpoint, reason=WebhookEndpoint.DisabledReason.GONE)
        return
    failing_too_long = now - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    if WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True, failing_since__lte=failing_too_long).exists():
        webhook_endpoint_disable(endpoint=endpoint, reason=WebhookEndpoint.DisabledReason.FAILING)


@transaction.atomic
def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Disable an enabled endpoint and record a `webhook.disabled` event. False if it was already disabled."""
    now = timezone.now()
    disabled = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now
    )
    if not disabled:
        return False
    endpoint.refresh_from_db()
    services.event_emit(
        tenant=endpoint.tenant,
        type="webhook.disabled",
        data=webhook_disabled_event_data(endpoint=endpoint, reason=reason, disabled_at=now),
    )
    return True
