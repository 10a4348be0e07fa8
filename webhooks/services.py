"""Webhook services. The event outbox lives here; delivery comes with the webhooks issue."""

from webhooks.models import Event


def event_emit(*, tenant, type: str, data: dict) -> Event:
    """Record an event in the caller's transaction (the outbox).

    Call it inside the same `transaction.atomic()` block as the change that
    caused the event, so the event exists if and only if the change does.
    """
    return Event.objects.create(tenant=tenant, type=type, data=data)
