"""Small helpers for tests of the API pipeline."""

import itertools
import os
import secrets
import time

from bothero.api.signing import compute_signature

_addresses = itertools.count(1)


def unique_client_address() -> str:
    """A loopback address string no other test uses, so per-address counters (failed sign-ins) stay apart.

    It is only ever a REMOTE_ADDR value in a test request; nothing connects to it.
    """
    n = next(_addresses) + (os.getpid() % 200) * 65536
    return f"127.{(n >> 16) % 256}.{(n >> 8) % 256}.{n % 256}"


def wait_for_window_room(seconds_needed: float, window_seconds: int = 60) -> None:
    """Sleep into the next fixed rate-limit window if fewer than `seconds_needed` remain in this one.

    Counting tests make all their calls inside one window; a window that
    closed half-way would reset the count under them.
    """
    remaining = window_seconds - (time.time() % window_seconds)
    if remaining < seconds_needed:
        time.sleep(remaining + 0.05)


def signed_headers(secret: str, *, method: str, path: str, body: bytes = b"", timestamp: int | None = None, nonce=None):
    """The X-BotHero-* headers of a correctly signed request (what a client library sends)."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    signature = compute_signature(secret, timestamp=timestamp, nonce=nonce, method=method, path=path, body=body)
    return {"X-BotHero-Timestamp": timestamp, "X-BotHero-Nonce": nonce, "X-BotHero-Signature": signature}
