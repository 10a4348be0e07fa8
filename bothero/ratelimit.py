"""Fixed-window counters shared by every web process (Redis), or per process without Redis.

A window is a calendar minute (by default); the counter for `key` in that
window is one Redis key, incremented and given an expiry in one MULTI/EXEC, so
every process sees the same count and no increment is lost.
"""

import threading
import time
from dataclasses import dataclass

from bothero.redis_client import get_redis

_local_counts: dict[str, tuple[int, float]] = {}
_local_lock = threading.Lock()


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


def _window(key: str, window_seconds: int) -> tuple[str, int]:
    now = time.time()
    window_start = int(now // window_seconds) * window_seconds
    reset = max(1, int(window_start + window_seconds - now + 0.999))
    return f"ratelimit:{key}:{window_start}", reset


def _result(count: int, limit: int, reset: int) -> RateLimitResult:
    return RateLimitResult(allowed=count <= limit, limit=limit, remaining=max(0, limit - count), reset_seconds=reset)


def hit(key: str, *, limit: int, window_seconds: int = 60) -> RateLimitResult:
    """Count one hit against `key` and say whether it is within `limit` for the current window."""
    counter_key, reset = _window(key, window_seconds)
    client = get_redis()
    if client is not None:
        pipe = client.pipeline()  # MULTI/EXEC: the increment and its expiry are one step
        pipe.incr(counter_key)
        pipe.expire(counter_key, window_seconds + 5)
        count = pipe.execute()[0]
    else:
        now = time.time()
        with _local_lock:
            count = _local_counts.get(counter_key, (0, 0.0))[0] + 1
            _local_counts[counter_key] = (count, now)
            for stale in [k for k, (_, t) in _local_counts.items() if now - t > 2 * window_seconds]:
                del _local_counts[stale]
    return _result(count, limit, reset)


def peek(key: str, *, limit: int, window_seconds: int = 60) -> RateLimitResult:
    """Where `key` stands in the current window, without counting a hit.

    `allowed` says whether one more hit would still be within `limit`.
    """
    counter_key, reset = _window(key, window_seconds)
    client = get_redis()
    if client is not None:
        count = int(client.get(counter_key) or 0)
    else:
        with _local_lock:
            count = _local_counts.get(counter_key, (0, 0.0))[0]
    return _result(count + 1, limit, reset)


def hit_tenant(tenant) -> RateLimitResult:
    """Count one API call against `tenant`'s plan: `requests_per_minute`, shared by every process."""
    return hit(f"tenant:{tenant.public_id}", limit=tenant.plan.requests_per_minute)
