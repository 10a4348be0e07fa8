"""The fan-out: undispatched events become deliveries, handed to the sender threads.

* `events_dispatch` reads a batch of undispatched events with their
  subscribers, then marks them dispatched and inserts their deliveries in one
  statement, skipping events another dispatcher holds (SKIP LOCKED); a unique
  constraint keeps one `Delivery` per event and endpoint. The deliveries are
  created claimed for their first attempt (`sending`, a lease).
* `events_dispatch_pending` is the dispatcher task's loop: batches until none
  is left, the attempts handed to the process's sender threads
  (`webhooks.senders`), waiting briefly for more events between batches
  (`webhooks.queueing` has the wake-up protocol).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from bothero.ids import new_public_id
from webhooks import queueing, sql
from webhooks.attempt import delivery_attempt_first, lease_until
from webhooks.models import Delivery
from webhooks.senders import get_senders


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
                lease=lease_until(now),
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
                claimed_until=lease_until(now),
                last_attempt_at=now,
                created_at=now,
            )
        )
    return marked, [delivery_id for delivery_id, _, _ in inserted], len(batch) == limit


def event_dispatch(*, event_id: int) -> list[int]:
    """Fan out one event and make its first attempts here, one after another. [] if it was dispatched already."""
    _marked, delivery_ids, _full = events_dispatch(send=delivery_attempt_first, event_ids=[event_id], limit=1)
    return delivery_ids


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
