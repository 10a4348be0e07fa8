"""Fixed-window counters shared by every web process (Redis), or per process without Redis."""

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


def hit(key: str, *, limit: int, window_seconds: int = 60) -> RateLimitResult:
    """Count one hit against `key` and say whether it is within `limit` for the current window."""
    now = time.time()
    window_start = int(now // window_seconds) * window_seconds
    reset = max(1, int(window_start + window_seconds - now + 0.999))
    counter_key = f"ratelimit:{key}:{window_start}"
    client = get_redis()
    if client is not None:
        pipe = client.pipeline()
        pipe.incr(counter_key)
        pipe.expire(counter_key, window_seconds + 5)
        count = pipe.execute()[0]
    else:
        with _local_lock:
            count = _local_counts.get(counter_key, (0, 0.0))[0] + 1
            _local_counts[counter_key] = (count, now)
            for stale in [k for k, (_, t) in _local_counts.items() if now - t > 2 * window_seconds]:
                del _local_counts[stale]
    return RateLimitResult(allowed=count <= limit, limit=limit, remaining=max(0, limit - count), reset_seconds=reset)


def peek(key: str, *, limit: int, window_seconds: int = 60) -> int:
    """How many hits `key` has in the current window, without counting one."""
    window_start = int(time.time() // window_seconds) * window_seconds
    counter_key = f"ratelimit:{key}:{window_start}"
    client = get_redis()
    if client is not None:
        return int(client.get(counter_key) or 0)
    with _local_lock:
        return _local_counts.get(counter_key, (0, 0.0))[0]
