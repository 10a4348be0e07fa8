"""Putting webhook work on the `webhooks` queue, from `transaction.on_commit` callbacks.

Queueing never raises a broker failure into the caller (a request that has
already committed): it is logged, and the periodic sweep finds the work in
the database later (an undispatched event, or a due delivery). The database
is the source of truth; a queued message is only a wake-up call.
"""

import logging

from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

QUEUE = "webhooks"

# Fail fast when the broker is unreachable: the sweep is the retry.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
BROKER_ERRORS = (OperationalError, ConnectionError, OSError)


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


def event_dispatch_enqueue(*, event_id: int) -> bool:
    from webhooks.tasks import dispatch_event

    return _enqueue(dispatch_event, event_id)


def delivery_send_enqueue(*, delivery_id: int) -> bool:
    from webhooks.tasks import send_delivery

    return _enqueue(send_delivery, delivery_id)


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
    from webhooks.delivery import deliveries_claim_for_queue

    return deliveries_send_enqueue(deliveries_claim_for_queue(endpoint_id=endpoint_id))
