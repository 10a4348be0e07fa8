"""Per-tenant rate limit from the plan, counted in Redis so every web process shares it."""

import logging

from rest_framework.throttling import BaseThrottle

from accounts.services import usage_increment
from bothero import ratelimit

logger = logging.getLogger(__name__)


def api_request_count(tenant) -> None:
    """Add one API request to the tenant's monthly usage (run once its response has been sent)."""
    try:
        usage_increment(tenant=tenant, api_requests=1)
    except Exception:  # the response is out; a lost count must not turn into an error anywhere
        logger.exception("Could not count an API request of tenant %s", tenant.public_id)


class TenantRateThrottle(BaseThrottle):
    """Last step of the pipeline: count the request against the plan's requests per minute.

    Requests let through are also counted in the tenant's monthly usage —
    after their response has gone out (`RequestIdMiddleware` arranges it), so
    that the write is not part of any request's latency.
    """

    def allow_request(self, request, view):
        tenant = getattr(request.user, "tenant", None)
        if tenant is None:
            return True
        result = ratelimit.hit_tenant(tenant)
        # Read by RequestIdMiddleware, which puts them on every response, errors included.
        request._request.rate_limit_headers = result.headers()
        self._wait = result.reset_seconds
        if result.allowed:
            request._request.api_request_tenant = tenant
        return result.allowed

    def wait(self):
        return self._wait
