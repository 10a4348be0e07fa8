"""Inbound request signing for API keys created with `require_signature`.

Signature: `X-BotHero-Signature: v1=<hex>` where hex is HMAC-SHA256(secret,
`v1:{timestamp}:{nonce}:{METHOD}:{path and query}:{hex sha256 of the raw body}`).
A request is refused when the signature is missing or wrong, the timestamp is
more than SIGNATURE_TOLERANCE_SECONDS away, or the nonce was seen before.
"""

import hashlib
import hmac
import logging
import re
import time

import redis
from django.conf import settings
from django.core.cache import cache

from bothero.errors import AuthenticationError, ServiceUnavailableError

logger = logging.getLogger(__name__)

NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,64}$")


def signature_payload(*, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"v1:{timestamp}:{nonce}:{method.upper()}:{path}:{body_hash}".encode()


def compute_signature(secret: str, *, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    """The value of X-BotHero-Signature for a request (what a client library computes)."""
    payload = signature_payload(timestamp=timestamp, nonce=nonce, method=method, path=path, body=body)
    return "v1=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def verify_request_signature(request, *, secret: str, key_id: str) -> None:
    """Raise AuthenticationError unless `request` (a Django HttpRequest) is correctly signed."""
    timestamp = request.headers.get("X-BotHero-Timestamp", "")
    nonce = request.headers.get("X-BotHero-Nonce", "")
    signature = request.headers.get("X-BotHero-Signature", "")
    if not (timestamp and nonce and signature):
        raise AuthenticationError(
            "This API key requires signed requests: send X-BotHero-Timestamp, X-BotHero-Nonce and X-BotHero-Signature.",
            code="signature_required",
        )
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > settings.SIGNATURE_TOLERANCE_SECONDS:
        raise AuthenticationError(
            f"X-BotHero-Timestamp must be unix seconds within {settings.SIGNATURE_TOLERANCE_SECONDS} s of now.",
            code="signature_timestamp_out_of_range",
        )
    if not NONCE_PATTERN.match(nonce):
        raise AuthenticationError("X-BotHero-Nonce must be 16 to 64 characters of [A-Za-z0-9_-].", code="invalid_nonce")
    expected = compute_signature(
        secret,
        timestamp=timestamp,
        nonce=nonce,
        method=request.method,
        path=request.get_full_path(),
        body=request.body,
    )
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise AuthenticationError("The request signature does not match.", code="invalid_signature")
    # Only a correctly signed request may burn a nonce; the entry outlives the
    # timestamp window on both sides, so a replay is always caught.
    window = 2 * settings.SIGNATURE_TOLERANCE_SECONDS + 60
    try:
        fresh = cache.add(f"signing-nonce:{key_id}:{nonce}", 1, timeout=window)
    except redis.RedisError:
        # Fail closed: without the nonce store a replay cannot be told apart from a new request.
        logger.warning("Redis is unreachable; signed requests are refused until it is back", exc_info=True)
        raise ServiceUnavailableError(
            "Signed requests cannot be checked for replays right now. Retry shortly.", retry_after=5
        ) from None
    if not fresh:
        raise AuthenticationError("This nonce was already used.", code="nonce_reused")
