from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, Tenant, UsageCounter
from accounts.origins import origin_candidates
from accounts.services import current_period_start


def api_key_list(*, tenant: Tenant):
    return ApiKey.objects.filter(tenant=tenant).prefetch_related("bots")


def publishable_origin_allowed(*, origin: str) -> bool:
    """Whether some live publishable key, of any tenant, lists `origin` (for CORS preflights, which carry no key).

    One query on the GIN index of allowed_origins; the request that follows is
    checked against its own key's origins.
    """
    candidates = origin_candidates(origin)
    if not candidates:
        return False
    now = timezone.now()
    return (
        ApiKey.objects.filter(
            key_type=ApiKey.Type.PUBLISHABLE, revoked_at__isnull=True, allowed_origins__overlap=candidates
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exists()
    )


def usage_current(*, tenant: Tenant) -> UsageCounter:
    """This month's usage counters (unsaved zeros when nothing was counted yet)."""
    period = current_period_start()
    return UsageCounter.objects.filter(tenant=tenant, period_start=period).first() or UsageCounter(
        tenant=tenant, period_start=period
    )
