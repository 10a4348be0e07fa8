"""Per-tenant rate limit from the plan, counted in Redis so every web process shares it."""

from rest_framework.throttling import BaseThrottle

from bothero import ratelimit


class TenantRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        principal = request.user
        tenant = getattr(principal, "tenant", None)
        if tenant is None:
            return True
        result = ratelimit.hit(f"tenant:{tenant.public_id}", limit=tenant.plan.requests_per_minute)
        # Read by RequestIdMiddleware, which puts them on every response, errors included.
        request._request.rate_limit_headers = result.headers()
        self._wait = result.reset_seconds
        return result.allowed

    def wait(self):
        return self._wait
