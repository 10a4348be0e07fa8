"""Webhook services: the event outbox, endpoint management, test events and manual redelivery.

Delivery itself is in `webhooks.dispatch` (fan-out), `webhooks.attempt` (one attempt, retries) and `webhooks.sweep`.
"""

from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bothero.errors import ConflictError, ValidationError
from bothero.ids import new_public_id
from webhooks import queueing, sql
from webhooks.addresses import BlockedAddressError, check_webhook_url
from webhooks.event_types import ALL_EVENTS, TEST_EVENT, unknown_event_types
from webhooks.models import Delivery, Event, WebhookEndpoint
from webhooks.signing import secret_generate


def event_emit(*, tenant, type: str, data: dict) -> Event:
    """Record an event in the caller's transaction (the outbox).

    Call it inside the same `transaction.atomic()` block as the change that
    caused the event, so the event exists if and only if the change does.
    After commit a dispatcher task on the `webhooks` queue fans it out to the
    subscribed endpoints (one task serves many events: `webhooks.queueing`);
    if that cannot be queued (broker down), the periodic sweep dispatches it
    later. An event no endpoint subscribes to is marked dispatched at once.
    One INSERT (with the subscription check) and, after commit, one Redis
    round trip.
    """
    event = sql.event_insert(tenant_id=tenant.pk, type=type, data=data, now=timezone.now())
    event_inserted(dispatched_at=event.dispatched_at)
    return event


def event_emit_ctes(
    *, tenant_id: int, events: list[tuple[str, dict]], now
) -> tuple[list[tuple[str, str, list]], list[str]]:
    """`event_emit` for a caller that writes its change and its events in one statement of CTEs.

    Returns the outbox's inserts as CTEs (name, SQL, positional parameters) to
    add to the caller's `WITH`, and, per event, the SQL expression of its
    `dispatched_at` to select; hand each selected value to `event_inserted`
    (after commit it wakes the dispatcher). The outbox's statement stays here,
    whoever runs it (`conversations.sql`).
    """
    ctes, dispatches = [], []
    for number, (type, data) in enumerate(events):
        sql_text, params = sql.event_insert_sql(
            public_id=new_public_id("evt"), tenant_id=tenant_id, type=type, data=data, now=now
        )
        ctes.append((f"event_{number}", sql_text, params))
        dispatches.append(f"(SELECT dispatched_at FROM event_{number})")
    return ctes, dispatches


def event_inserted(*, dispatched_at) -> None:
    """The rest of `event_emit` for an event inserted by a caller's own statement (`event_emit_ctes`).

    An event left undispatched (someone subscribes) wakes the dispatcher after commit.
    """
    if dispatched_at is None:
        transaction.on_commit(queueing.events_dispatch_wake)


def _clean_events(events: list[str]) -> list[str]:
    unknown = unknown_event_types(events)
    if unknown:
        raise ValidationError(
            f"Unknown event type {unknown[0]!r}. GET /v1/webhooks/event-types lists them; '*' subscribes to all.",
            code="unknown_event_type",
            param="events",
        )
    if ALL_EVENTS in events:
        return [ALL_EVENTS]
    return list(dict.fromkeys(events))


def _clean_url(url: str) -> str:
    """Refuse URLs that are not https (unless allowed) or resolve to non-public addresses. Resolves DNS."""
    try:
        check_webhook_url(url, allow_private=settings.ALLOW_PRIVATE_URLS, must_resolve=False)
    except BlockedAddressError as exc:
        raise ValidationError(exc.message, code=exc.code, param="url") from None
    return url


def webhook_endpoint_create(
    *, tenant, url: str, events: list[str], description: str = "", enabled: bool = True
) -> WebhookEndpoint:
    """Create an endpoint with a new signing secret, within the per-tenant endpoint limit."""
    events = _clean_events(events)
    url = _clean_url(url)  # DNS: before the transaction, never inside it
    with transaction.atomic():
        # Lock the tenant row so two concurrent creates cannot both pass the limit check.
        type(tenant).objects.select_for_update().filter(pk=tenant.pk).first()
        limit = settings.WEBHOOK_MAX_ENDPOINTS
        if WebhookEndpoint.objects.filter(tenant=tenant).count() >= limit:
            raise ConflictError(
                f"A tenant may have at most {limit} webhook endpoints. Delete one first.",
                code="webhook_limit_reached",
            )
        now = timezone.now()
        return WebhookEndpoint.objects.create(
            tenant=tenant,
            url=url,
            events=events,
            description=description,
            enabled=enabled,
            disabled_reason="" if enabled else WebhookEndpoint.DisabledReason.MANUAL,
            disabled_at=None if enabled else now,
            secret=secret_generate(),
        )


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, **fields) -> WebhookEndpoint:
    """Change url, events, description or enabled.

    Disabling keeps pending deliveries waiting; enabling clears the failure
    record and makes the waiting deliveries due now, so delivery resumes.
    """
    if "events" in fields:
        fields["events"] = _clean_events(fields["events"])
    if "url" in fields and fields["url"] != endpoint.url:
        fields["url"] = _clean_url(fields["url"])
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        changed = [name for name in ("url", "events", "description") if name in fields]
        for name in changed:
            setattr(endpoint, name, fields[name])
        enabled = fields.get("enabled", endpoint.enabled)
        now = timezone.now()
        if enabled and not endpoint.enabled:
            endpoint.enabled = True
            endpoint.disabled_reason = ""
            endpoint.disabled_at = None
            endpoint.failing_since = None
            changed += ["enabled", "disabled_reason", "disabled_at", "failing_since"]
            Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING).update(
                next_attempt_at=now, queued_at=None
            )
            transaction.on_commit(partial(queueing.endpoint_resume_enqueue, endpoint_id=endpoint.pk))
        elif not enabled and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason = WebhookEndpoint.DisabledReason.MANUAL
            endpoint.disabled_at = now
            changed += ["enabled", "disabled_reason", "disabled_at"]
        if changed:
            endpoint.save(update_fields=[*changed, "updated_at"])
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint and its delivery log. A request already in flight finishes; its result is dropped."""
    endpoint.delete()


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Give the endpoint a new secret; the old one keeps signing beside it for the grace period (24 h)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    now = timezone.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(seconds=settings.WEBHOOK_SECRET_ROTATION_GRACE_SECONDS)
    endpoint.secret = secret_generate()
    endpoint.secret_rotated_at = now
    endpoint.save(
        update_fields=["previous_secret", "previous_secret_expires_at", "secret", "secret_rotated_at", "updated_at"]
    )
    return endpoint


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise ConflictError(
            'This webhook is disabled. Enable it with PATCH {"enabled": true} first.',
            code="webhook_disabled",
            param="id",
        )


@transaction.atomic
def webhook_test_send(*, endpoint: WebhookEndpoint) -> Delivery:
    """Send a `webhook.test` event to this endpoint only (whatever it subscribes to)."""
    _require_enabled(endpoint)
    now = timezone.now()
    event = Event.objects.create(
        tenant_id=endpoint.tenant_id,
        type=TEST_EVENT,
        data={"webhook_id": endpoint.public_id, "message": "This is a test event from BotHero."},
        dispatched_at=now,
    )
    delivery = Delivery.objects.create(endpoint=endpoint, event=event, next_attempt_at=now, queued_at=now)
    transaction.on_commit(partial(queueing.delivery_send_enqueue, delivery_id=delivery.pk))
    return delivery


@transaction.atomic
def webhook_delivery_retry(*, delivery: Delivery) -> Delivery:
    """Attempt a delivery again now (a manual redelivery), whatever its status, unless one is in flight.

    The event keeps its id, so the receiver can recognise a repeat.
    """
    _require_enabled(delivery.endpoint)
    now = timezone.now()
    updated = Delivery.objects.filter(
        pk=delivery.pk,
        status__in=[Delivery.Status.PENDING, Delivery.Status.SUCCEEDED, Delivery.Status.FAILED],
    ).update(status=Delivery.Status.PENDING, next_attempt_at=now, completed_at=None, queued_at=now)
    if not updated:
        raise ConflictError(
            "This delivery is being attempted right now. Try again when the attempt has finished.",
            code="delivery_in_progress",
            param="delivery_id",
        )
    transaction.on_commit(partial(queueing.delivery_send_enqueue, delivery_id=delivery.pk))
    delivery.refresh_from_db()
    return delivery
