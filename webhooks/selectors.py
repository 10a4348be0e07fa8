"""Reads for webhooks: endpoints and deliveries (who subscribes to an event is part of `sql.event_insert_sql`)."""

from bothero.errors import NotFoundError
from webhooks.models import Delivery, WebhookEndpoint


def webhook_endpoint_list(*, tenant):
    return WebhookEndpoint.objects.filter(tenant=tenant)


def webhook_endpoint_get(*, tenant, public_id: str) -> WebhookEndpoint:
    """The tenant's endpoint with this id, or NotFoundError (`webhook_not_found`) — also for another tenant's."""
    endpoint = WebhookEndpoint.objects.filter(tenant=tenant, public_id=public_id).first()
    if endpoint is None:
        raise NotFoundError(f"No such webhook: {public_id}.", code="webhook_not_found", param="id")
    return endpoint


def webhook_delivery_list(*, endpoint: WebhookEndpoint, status: str | None = None):
    deliveries = Delivery.objects.filter(endpoint=endpoint).select_related("event", "endpoint")
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries
