from accounts.models import ApiKey, Tenant, UsageCounter
from accounts.services import current_period_start


def api_key_list(*, tenant: Tenant):
    return ApiKey.objects.filter(tenant=tenant)


def usage_current(*, tenant: Tenant) -> UsageCounter:
    """This month's usage counters (unsaved zeros when nothing was counted yet)."""
    period = current_period_start()
    return UsageCounter.objects.filter(tenant=tenant, period_start=period).first() or UsageCounter(
        tenant=tenant, period_start=period
    )
