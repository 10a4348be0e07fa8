"""Outbound HTTP for webhook delivery: one POST, no redirects, a hard time limit, checked addresses only.

Two things plain `httpx.post` does not give us:

* **The connection goes only to the addresses we checked.** The URL's host is
  resolved and every address checked against the SSRF rules right before the
  request (`webhooks.addresses`); the network backend then connects only to
  those addresses, so DNS cannot answer differently between the check and the
  connection (rebinding). TLS is still verified against the host name.
* **The time-out is a deadline for the whole request** (connect, TLS, send,
  response), not per socket operation, so a receiver that trickles bytes
  cannot hold a worker past it.

One connection pool per process (created after fork), so connections to a
receiver are kept alive between deliveries. Requests go straight to the
transport rather than through `httpx.Client`: exactly one request, with no
redirect handling, no cookie jar shared between tenants' endpoints, no auth
and no proxies from the environment.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import httpcore
import httpx

from webhooks.addresses import BlockedAddressError, resolve_checked

USER_AGENT = "BotHero-Webhooks/1.0"
MAX_RESPONSE_BODY_BYTES = 1024

_request_state = threading.local()


def _remaining(timeout: float | None, exc_class) -> float | None:
    deadline = getattr(_request_state, "deadline", None)
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise exc_class("The delivery time-out was reached.")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, _remaining(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _CheckedAddressBackend(httpcore.NetworkBackend):
    """Connects a host only to the addresses checked for this request."""

    def __init__(self):
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = (getattr(_request_state, "addresses", None) or {}).get(host)
        if not addresses:
            raise httpcore.ConnectError(f"No checked address for {host}.")
        error: Exception | None = None
        for address in addresses:
            try:
                stream = self._backend.connect_tcp(
                    address,
                    port,
                    timeout=_remaining(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
                return _DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("Unix sockets are not webhook targets.")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _CheckedTransport(httpx.HTTPTransport):
    """httpx's transport with our network backend (httpx does not take one; its pool does)."""

    def __init__(self, *, limits: httpx.Limits):
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedAddressBackend(),
        )


_transport: _CheckedTransport | None = None
_transport_pid: int | None = None
_transport_lock = threading.Lock()


def _get_transport() -> _CheckedTransport:
    global _transport, _transport_pid
    with _transport_lock:
        if _transport is None or _transport_pid != os.getpid():
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30)
            _transport = _CheckedTransport(limits=limits)
            _transport_pid = os.getpid()
        return _transport


# 4xx answers that a later attempt may not get: the receiver's credentials or state may be fixed
# within the retry schedule, or it asks us to wait. Every other 4xx is final for this delivery.
RETRYABLE_CLIENT_ERRORS = frozenset({401, 403, 408, 409, 425, 429})


@dataclass
class PostResult:
    """What happened to one POST: a response (any status), or an error before one arrived.

    `permanent` says that sending the same request again cannot succeed (as in healthchecks'
    `TransportError(permanent=...)`): the address is refused by the SSRF guard, or the receiver
    answered a 4xx that is not in RETRYABLE_CLIENT_ERRORS (404, 410, 400, 422, ...). The delivery
    then fails at once instead of going through the whole retry schedule.
    """

    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str = ""
    duration_ms: int = 0
    blocked: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def permanent(self) -> bool:
        if self.blocked:
            return True
        code = self.status_code
        return code is not None and 400 <= code < 500 and code not in RETRYABLE_CLIENT_ERRORS


def post(*, url: str, body: bytes, headers: dict[str, str], timeout: float, allow_private: bool) -> PostResult:
    """POST `body` to `url` once. Never raises for network trouble; returns what happened."""
    started = time.monotonic()
    try:
        host, addresses = resolve_checked(url, allow_private=allow_private)
    except BlockedAddressError as exc:
        return PostResult(error=f"Not sent: {exc}", duration_ms=_elapsed_ms(started), blocked=True)
    _request_state.addresses = {host: addresses}
    _request_state.deadline = started + timeout
    request = httpx.Request(
        "POST",
        url,
        content=body,
        headers={"user-agent": USER_AGENT, **headers},
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    try:
        # Straight to the transport: one request, no redirects, no cookie jar, no auth, no proxies.
        response = _get_transport().handle_request(request)
        try:
            received = bytearray()
            for chunk in response.stream:
                received += chunk
                if len(received) >= MAX_RESPONSE_BODY_BYTES:
                    break
        finally:
            response.close()
        return PostResult(
            status_code=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=bytes(received[:MAX_RESPONSE_BODY_BYTES]).decode("utf-8", errors="replace"),
            duration_ms=_elapsed_ms(started),
        )
    except httpx.TimeoutException:
        return PostResult(error=f"Timed out after {timeout:g} s.", duration_ms=_elapsed_ms(started))
    except httpx.HTTPError as exc:
        return PostResult(error=f"{type(exc).__name__}: {exc}"[:500], duration_ms=_elapsed_ms(started))
    finally:
        _request_state.addresses = None
        _request_state.deadline = None


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
