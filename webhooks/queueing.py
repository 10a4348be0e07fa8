"""Putting webhook work on the `webhooks` queue, from `transaction.on_commit` callbacks.

Queueing never raises a broker failure into the caller (a request that has
already committed): it is logged, and the periodic sweep finds the work in
the database later (an undispatched event, or a due delivery). The database
is the source of truth; a queued message is only a wake-up call.

**Coalesced wake-ups.** New events are fanned out by a `dispatch_events`
task that takes every undispatched event, not one task per event: a message
through Celery costs more CPU (publish, fetch, ack: several Redis round trips
on each side) than the rest of a delivery. With a Redis broker, a wake-up key
says "a dispatcher is queued or running":

* after commit, the emitter sets the key if absent (`SET NX`) and pushes a
  token; only the emitter that set the key publishes a task;
* the dispatcher, once it has fanned out everything it saw, waits briefly
  for a token (more events), and when none comes deletes the key and looks
  once more before it stops.

An emitter that found the key set committed its event before the dispatcher
deleted the key, so the dispatcher's last look (after the delete) sees it.
The key expires (`WAKE_KEY_TTL_SECONDS`, refreshed by a live dispatcher), so
a dispatcher that dies, or a wake-up message that is lost (a purged queue),
only delays the next wake-up; events emitted meanwhile are fanned out by the
next dispatcher or by the sweep. With another broker every event publishes a
task.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from bothero.celery import app as celery_app
from bothero.celery import task_by_name
from webhooks.models import Delivery

logger = logging.getLogger(__name__)

QUEUE = "webhooks"
# The tasks, found by name (`bothero.celery.task_by_name`): this module imports no task module back.
DISPATCH_EVENTS = "webhooks.dispatch_events"
SEND_DELIVERY = "webhooks.send_delivery"

# Fail fast when the broker is unreachable: the sweep is the retry.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
BROKER_ERRORS = (OperationalError, ConnectionError, OSError, redis.RedisError)

WAKE_KEY = "bothero:webhooks:dispatcher"
WAKE_TOKENS = "bothero:webhooks:dispatcher:tokens"
# Short, so that a key left behind (its dispatcher killed, its message lost) soon stops holding back
# wake-ups; a live dispatcher refreshes it at least every second while it waits. A busy dispatcher
# may let it lapse: then a second dispatcher is queued, which is harmless.
WAKE_KEY_TTL_SECONDS = 3.0

_clients: dict[tuple[int, str, bool], redis.Redis] = {}
_clients_lock = threading.Lock()


def _wake_client(*, blocking: bool = False) -> redis.Redis | None:
    """A Redis client on the broker (one per process), or None when the broker is not Redis."""
    url = celery_app.conf.broker_url or ""
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return None
    key = (os.getpid(), url, blocking)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # The dispatcher's client blocks in BLPOP for up to the linger; the emitters' must fail fast.
            timeout = settings.WEBHOOK_DISPATCH_LINGER_SECONDS + 5 if blocking else 1.0
            client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=timeout)
            _clients[key] = client
        return client


def _enqueue(task, *args) -> bool:
    try:
        task.apply_async(args=args, queue=QUEUE, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except BROKER_ERRORS:
        logger.warning(
            "Could not queue %s%r (broker unreachable); the webhook sweep will pick it up.",
            task.name,
            args,
            exc_info=True,
        )
        return False
    return True


def events_dispatch_wake() -> bool:
    """After an event committed: make sure a dispatcher is queued or running. False if the broker is down."""
    dispatch_events = task_by_name(DISPATCH_EVENTS)
    if celery_app.conf.task_always_eager:
        return _enqueue(dispatch_events)
    client = _wake_client()
    if client is None:
        return _enqueue(dispatch_events)
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.set(WAKE_KEY, 1, nx=True, px=int(WAKE_KEY_TTL_SECONDS * 1000))
            pipe.lpush(WAKE_TOKENS, 1)
            pipe.ltrim(WAKE_TOKENS, 0, 0)
            became_waker, _, _ = pipe.execute()
    except redis.RedisError:
        logger.warning("Could not wake the webhook dispatcher (broker unreachable); the sweep will.", exc_info=True)
        return False
    if not became_waker:
        return True  # a dispatcher is queued or running and will see the event
    if _enqueue(dispatch_events):
        return True
    _wake_key_delete(client)  # let the next emitter try again
    return False


def events_dispatch_hand_over() -> bool:
    """A dispatcher stopping with work left (its senders are busy, or it ran long): queue another one."""
    dispatch_events = task_by_name(DISPATCH_EVENTS)
    client = _wake_client()
    if client is not None:
        try:
            client.set(WAKE_KEY, 1, px=int(WAKE_KEY_TTL_SECONDS * 1000))
        except redis.RedisError:
            logger.warning("Could not set the webhook wake-up key.", exc_info=True)
    if _enqueue(dispatch_events):
        return True
    if client is not None:
        _wake_key_delete(client)  # let the next emitter try again
    return False


def dispatcher_wait_for_events(seconds: float, *, stop: Callable[[], bool] = lambda: False) -> bool:
    """The dispatcher's linger: True when an emitter pushed a token within `seconds` (or `stop()` came true).

    When none came, the wake-up key is deleted (emitters publish a new task
    from then on) and False is returned; the caller must then look for
    events once more. Without a Redis broker it returns False at once. It
    waits in slices of at most a second, so a worker shutting down is not
    held up by it.
    """
    client = _wake_client(blocking=True)
    if client is None:
        return False
    deadline = time.monotonic() + seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with client.pipeline(transaction=False) as pipe:
                pipe.pexpire(WAKE_KEY, int(WAKE_KEY_TTL_SECONDS * 1000))
                pipe.blpop([WAKE_TOKENS], timeout=min(remaining, 1.0))
                _, token = pipe.execute()
            if token is not None or stop():
                return True
    except redis.RedisError:
        logger.warning("Webhook dispatcher lost the broker while waiting for events.", exc_info=True)
    _wake_key_delete(client)
    return False


def _wake_key_delete(client: redis.Redis) -> None:
    try:
        client.delete(WAKE_KEY)
    except redis.RedisError:
        logger.warning("Could not delete the webhook wake-up key; it expires by itself.", exc_info=True)


def dispatcher_state_reset() -> None:
    """Forget the wake-up key and tokens (after purging the queue, whose messages they stood for)."""
    client = _wake_client()
    if client is not None:
        client.delete(WAKE_KEY, WAKE_TOKENS)


def delivery_send_enqueue(*, delivery_id: int) -> bool:
    return _enqueue(task_by_name(SEND_DELIVERY), delivery_id)


def deliveries_send_enqueue(delivery_ids: list[int]) -> int:
    """Queue several deliveries; stop at the first broker failure (the sweep re-queues the rest)."""
    queued = 0
    for delivery_id in delivery_ids:
        if not delivery_send_enqueue(delivery_id=delivery_id):
            break
        queued += 1
    return queued


def endpoint_resume_enqueue(*, endpoint_id: int) -> int:
    """Queue the waiting deliveries of a re-enabled endpoint (a first batch; the sweep finds the rest)."""
    return deliveries_send_enqueue(deliveries_claim_for_queue(endpoint_id=endpoint_id))


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
