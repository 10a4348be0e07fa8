"""Per-tenant rate limit from the plan, counted in Redis so every web process shares it."""

from rest_framework.throttling import BaseThrottle

from accounts.services import usage_increment
from bothero import ratelimit


class TenantRateThrottle(BaseThrottle):
    """Last step of the pipeline: count the request against the plan's requests per minute.

    Requests let through are also counted in the tenant's monthly usage.
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
            usage_increment(tenant=tenant, api_requests=1)
        return result.allowed

    def wait(self):
        return self._wait
