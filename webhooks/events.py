"""Event payloads of webhooks: `webhook.disabled` tells the tenant which endpoint stopped and why."""

from datetime import datetime

from webhooks.models import WebhookEndpoint


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def webhook_disabled_event_data(*, endpoint: WebhookEndpoint, reason: str, disabled_at: datetime) -> dict:
    """The endpoint, the reason and since when it had been failing."""
    return {
        "id": endpoint.public_id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "disabled_reason": reason,
        "failing_since": _iso(endpoint.failing_since),
        "disabled_at": _iso(disabled_at),
    }
