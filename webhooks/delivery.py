"""Delivery: fan events out to their endpoints, send one attempt, schedule retries, sweep up what was missed.

Each step is safe to run twice and from several workers at once:

* `events_dispatch` reads a batch of undispatched events with their
  subscribers, then marks them dispatched and inserts their deliveries in one
  statement, skipping events another dispatcher holds (SKIP LOCKED); a unique
  constraint keeps one `Delivery` per event and endpoint. The deliveries are
  created claimed for their first attempt (`sending`, a lease).
* `events_dispatch_pending` is the dispatcher task's loop: batches until none
  is left, the attempts handed to the process's sender threads
  (`webhooks.senders`), waiting briefly for more events between batches
  (`webhooks.queueing` has the wake-up protocol).
* `webhook_delivery_send` claims a retry with a conditional UPDATE
  (`pending` and due → `sending`, attempts + 1, a lease); a second worker's
  UPDATE matches no row and it stops. The HTTP request runs outside any
  transaction; its result is written only while the claim is still ours.
* `webhook_sweep` (Celery beat) dispatches events no dispatcher took (broker
  down), re-queues due retries, and returns deliveries whose worker died
  mid-attempt (lease expired) to `pending`.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from bothero.ids import new_public_id
from webhooks import queueing, services, sql, transport
from webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint
from webhooks.senders import get_senders
from webhooks.signing import event_body, signed_headers

logger = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = (429, 503)
INTERRUPTED_ERROR = "Interrupted: the worker was lost before it recorded a result."


# --- fan-out -------------------------------------------------------------------


def _lease(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + settings.WEBHOOK_CLAIM_GRACE_SECONDS)


def events_dispatch(
    *,
    send: Callable[[Delivery], object],
    limit: int | None = None,
    event_ids: list[int] | None = None,
    created_before: datetime | None = None,
) -> tuple[int, list[int], bool]:
    """Fan out a batch of undispatched events (oldest first) and hand their deliveries to `send`.

    Each subscribed, enabled endpoint gets one delivery, created already
    claimed for its first attempt (`sending`, a lease), so `send` only has to
    make the attempt; if the process dies first, the sweep takes the claim
    back when the lease runs out. Events another dispatcher holds are
    skipped. Returns (events dispatched here, delivery ids, whether the batch
    was full — more may be waiting).
    """
    limit = limit or settings.WEBHOOK_DISPATCH_BATCH_SIZE
    for _try in range(3):
        batch = sql.events_undispatched_with_subscribers(
            limit=limit, event_ids=event_ids, created_before=created_before
        )
        if not batch:
            return 0, [], False
        now = timezone.now()
        planned = {new_public_id("dlv"): (event, endpoint) for event, endpoints in batch for endpoint in endpoints}
        try:
            marked, inserted = sql.events_dispatch_insert(
                event_ids=[event.pk for event, _ in batch],
                now=now,
                lease=_lease(now),
                deliveries=[(public_id, endpoint.pk, event.pk) for public_id, (event, endpoint) in planned.items()],
            )
            break
        except IntegrityError:
            continue  # an endpoint was deleted since we read it: read again
    else:
        raise RuntimeError("Could not dispatch webhook events: their endpoints keep changing.")
    by_pair = {
        (endpoint.pk, event.pk): (public_id, event, endpoint) for public_id, (event, endpoint) in planned.items()
    }
    for delivery_id, endpoint_id, event_id in inserted:
        public_id, event, endpoint = by_pair[(endpoint_id, event_id)]
        send(
            Delivery(
                pk=delivery_id,
                public_id=public_id,
                endpoint=endpoint,
                event=event,
                status=Delivery.Status.SENDING,
                attempts=1,
                next_attempt_at=now,
                claimed_until=_lease(now),
                last_attempt_at=now,
                created_at=now,
            )
        )
    return marked, [delivery_id for delivery_id, _, _ in inserted], len(batch) == limit


def event_dispatch(*, event_id: int) -> list[int]:
    """Fan out one event and make its first attempts here, one after another. [] if it was dispatched already."""
    _marked, delivery_ids, _full = events_dispatch(send=delivery_attempt_first, event_ids=[event_id], limit=1)
    return delivery_ids


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


def events_dispatch_pending(*, in_background: bool, stop: Callable[[], bool] = lambda: False) -> int:
    """The dispatcher (task `webhooks.dispatch_events`): fan out undispatched events until none come for a while.

    In a worker (`in_background`) attempts go to this process's sender
    threads, and between batches the dispatcher lingers for more events
    (`WEBHOOK_DISPATCH_LINGER_SECONDS`, see `webhooks.queueing`); it stops
    after `WEBHOOK_DISPATCH_MAX_SECONDS`, when its senders stay busy or when
    `stop()` comes true (the worker is shutting down), and queues another
    dispatcher to carry on. Run eagerly, it sends in the
    caller's thread and stops when nothing is left. Returns the number of
    events dispatched.
    """
    if not in_background:
        total = 0
        while True:
            marked, _ids, full = events_dispatch(send=delivery_attempt_first)
            total += marked
            if not (full and marked):
                return total
    senders = get_senders()
    started = time.monotonic()
    total = 0
    last_look = False
    while True:
        if stop() or not senders.wait_for_room(timeout=1.0):
            queueing.events_dispatch_hand_over()  # shutting down, or all senders busy: another worker carries on
            return total
        limit = min(settings.WEBHOOK_DISPATCH_BATCH_SIZE, senders.available())
        marked, _ids, full = events_dispatch(send=partial(senders.submit, delivery_attempt_first), limit=limit)
        total += marked
        more = full and marked  # a full batch: more may be waiting (a batch someone else took is theirs)
        if time.monotonic() - started > settings.WEBHOOK_DISPATCH_MAX_SECONDS:
            queueing.events_dispatch_hand_over()  # a fresh task, so that a restart never waits on this one
            return total
        if more:
            continue
        if last_look:
            return total
        if not queueing.dispatcher_wait_for_events(settings.WEBHOOK_DISPATCH_LINGER_SECONDS, stop=stop):
            last_look = True  # the wake-up key is gone: look again until nothing is left, then stop


# --- one attempt ------------------------------------------------------------------


def _claim(delivery_id: int, now: datetime) -> Delivery | None:
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now).update(
        status=Delivery.Status.SENDING,
        attempts=F("attempts") + 1,
        claimed_until=_lease(now),
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
        delay = None if gone else retry_delay(number=number, result=result, now=now)
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
        data={
            "id": endpoint.public_id,
            "object": "webhook_endpoint",
            "url": endpoint.url,
            "disabled_reason": reason,
            "failing_since": endpoint.failing_since.isoformat().replace("+00:00", "Z")
            if endpoint.failing_since
            else None,
            "disabled_at": now.isoformat().replace("+00:00", "Z"),
        },
    )
    return True


# --- the sweep ------------------------------------------------------------------------


def deliveries_claim_for_queue(*, endpoint_id: int | None = None, now: datetime | None = None) -> list[int]:
    """Mark a batch of due deliveries of enabled endpoints as queued now and return their ids.

    A delivery queued less than `WEBHOOK_REQUEUE_AFTER_SECONDS` ago is left
    alone: its message is presumably still on the queue.
    """
    now = now or timezone.now()
    requeue_before = now - timedelta(seconds=settings.WEBHOOK_REQUEUE_AFTER_SECONDS)
    due = Delivery.objects.filter(
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=now,
        endpoint__enabled=True,
    ).filter(Q(queued_at__isnull=True) | Q(queued_at__lt=requeue_before))
    if endpoint_id is not None:
        due = due.filter(endpoint_id=endpoint_id)
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[: settings.WEBHOOK_SWEEP_BATCH_SIZE]
        )
        Delivery.objects.filter(pk__in=ids).update(queued_at=now)
    return ids


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
    queued = queueing.deliveries_send_enqueue(deliveries_claim_for_queue())
    if recovered or dispatched or queued:
        logger.info(
            "Webhook sweep: %s interrupted, %s events dispatched, %s deliveries queued.", recovered, dispatched, queued
        )
    return {"recovered": recovered, "dispatched": dispatched, "queued": queued}
