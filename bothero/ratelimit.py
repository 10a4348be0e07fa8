"""Fixed-window counters shared by every web process (Redis), or per process without Redis; and slots
(`slot_acquire`), which bound how many of something a client holds open at once.

A window is a calendar minute (by default); the counter for `key` in that
window is one Redis key, incremented and given an expiry in one MULTI/EXEC, so
every process sees the same count and no increment is lost.

When Redis is configured but unreachable, counting fails open: each process
counts on its own (the limit then holds per process, not across them) and a
warning is logged, at most once every REDIS_DOWN_WARNING_SECONDS per process.
A Redis outage must not turn every API call into an error; the per-process
count still stops a single runaway client.
"""

import logging
import secrets
import threading
import time
from dataclasses import dataclass

import redis

from bothero.redis_client import get_redis

logger = logging.getLogger(__name__)

REDIS_DOWN_WARNING_SECONDS = 10.0
_last_warning = [0.0]

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
        try:
            pipe = client.pipeline()  # MULTI/EXEC: the increment and its expiry are one step
            pipe.incr(counter_key)
            pipe.expire(counter_key, window_seconds + 5)
            return _result(pipe.execute()[0], limit, reset)
        except redis.RedisError as exc:
            _warn_redis_down(exc)
    now = time.time()
    with _local_lock:
        count = _local_counts.get(counter_key, (0, 0.0))[0] + 1
        _local_counts[counter_key] = (count, now)
        for stale in [k for k, (_, t) in _local_counts.items() if now - t > 2 * window_seconds]:
            del _local_counts[stale]
    return _result(count, limit, reset)


def _warn_redis_down(exc: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= REDIS_DOWN_WARNING_SECONDS:
        _last_warning[0] = now
        logger.warning("Redis is unreachable (%s); rate limits are counted per process until it is back", exc)


def peek(key: str, *, limit: int, window_seconds: int = 60) -> RateLimitResult:
    """Where `key` stands in the current window, without counting a hit.

    `allowed` says whether one more hit would still be within `limit`.
    """
    counter_key, reset = _window(key, window_seconds)
    client = get_redis()
    if client is not None:
        try:
            return _result(int(client.get(counter_key) or 0) + 1, limit, reset)
        except redis.RedisError as exc:
            _warn_redis_down(exc)
    with _local_lock:
        count = _local_counts.get(counter_key, (0, 0.0))[0]
    return _result(count + 1, limit, reset)


def hit_tenant(tenant) -> RateLimitResult:
    """Count one API call against `tenant`'s plan: `requests_per_minute`, shared by every process."""
    return hit(f"tenant:{tenant.public_id}", limit=tenant.plan.requests_per_minute)


# --- concurrency: how many of something (an open stream) a client holds at once -------------------------

_local_slots: dict[str, dict[str, float]] = {}


def slot_acquire(key: str, *, limit: int, ttl_seconds: float) -> str | None:
    """Take one of `limit` slots of `key` for at most `ttl_seconds`: its token, or None when all are taken.

    A slot is a member of a Redis sorted set scored by its expiry, so one that is
    never released (a process killed mid-stream) frees itself when it expires.
    The member is added before the count is read: two racing requests may both
    be refused near the limit, never both admitted above it.
    """
    token = secrets.token_hex(8)
    now = time.time()
    client = get_redis()
    if client is not None:
        slots_key = f"slots:{key}"
        try:
            pipe = client.pipeline()
            pipe.zremrangebyscore(slots_key, "-inf", now)
            pipe.zadd(slots_key, {token: now + ttl_seconds})
            pipe.zcard(slots_key)
            pipe.expire(slots_key, int(ttl_seconds) + 5)
            taken = pipe.execute()[2]
            if taken <= limit:
                return token
            client.zrem(slots_key, token)
            return None
        except redis.RedisError as exc:
            _warn_redis_down(exc)
    with _local_lock:
        slots = _local_slots.setdefault(key, {})
        for stale in [t for t, expiry in slots.items() if expiry <= now]:
            del slots[stale]
        if len(slots) >= limit:
            return None
        slots[token] = now + ttl_seconds
    return token


def slot_release(key: str, token: str) -> None:
    """Give back the slot `token` of `key` (nothing when it has expired already)."""
    client = get_redis()
    if client is not None:
        try:
            client.zrem(f"slots:{key}", token)
            return
        except redis.RedisError as exc:
            _warn_redis_down(exc)
    with _local_lock:
        _local_slots.get(key, {}).pop(token, None)
