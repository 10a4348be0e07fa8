"""Server-side request forgery (SSRF) guard for outbound HTTP.

Whenever the platform fetches a URL that a tenant supplied (URL ingestion,
webhooks), the URL must not reach the platform's own network: loopback,
private ranges, link-local (including the 169.254.169.254 cloud metadata
service) and the other special-purpose ranges are refused unless explicitly
allowed. Link-local addresses and the cloud metadata services stay refused
even when private addresses are allowed (ALLOW_PRIVATE_URLS, for development
and tests): nothing legitimate lives there, and they hand out credentials.
:func:`fetch_url` connects to the very addresses it checked (no
second DNS lookup that a rebinding attack could answer differently) and
re-checks every redirect hop.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

INVALID_URL = "invalid_url"
URL_SCHEME_NOT_ALLOWED = "url_scheme_not_allowed"
URL_HOST_NOT_ALLOWED = "url_host_not_allowed"
FETCH_FAILED = "fetch_failed"
DOCUMENT_TOO_LARGE = "document_too_large"

# IANA special-purpose ranges that are not reachable, or not meant to be
# reached, on the public internet. Listed explicitly rather than trusting
# ipaddress.is_global alone, whose tables have changed across Python releases.
_BLOCKED_NETWORKS = [
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID...)
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
]
# IPv6 ranges that embed an IPv4 address, which is what really gets reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_BLOCKED_HOSTNAMES = ("localhost", "localhost.localdomain")
# Refused always, ALLOW_PRIVATE_URLS or not: link-local (169.254.169.254 is the AWS, GCP, Azure
# and OpenStack metadata service) and the metadata addresses that live in other ranges.
_ALWAYS_BLOCKED_NETWORKS = [
    ipaddress.ip_network(network)
    for network in (
        "169.254.0.0/16",  # link-local, cloud metadata
        "fe80::/10",  # link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
    )
]
_METADATA_HOSTNAMES = ("metadata.google.internal", "metadata.goog", "metadata.azure.com", "instance-data")


class NetguardError(Exception):
    """Base of the errors below: a stable ``code`` and a human ``message``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class UnsafeURLError(NetguardError):
    """The URL is malformed, uses a refused scheme or points at a non-public host."""


class FetchError(NetguardError):
    """The fetch itself failed (``fetch_failed``) or the body was too large (``document_too_large``).

    ``status_code`` is set when the server answered with an HTTP error.
    """

    def __init__(self, code: str, message: str, status_code: int | None = None):
        super().__init__(code, message)
        self.status_code = status_code


@dataclass
class FetchedURL:
    """A successful response: the final URL after redirects and the whole body."""

    url: str
    status_code: int
    content_type: str | None
    content: bytes
    # The response's headers (ETag, Last-Modified for conditional requests), lower-cased names.
    headers: dict[str, str] = field(default_factory=dict)


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one wraps (mapped, 6to4 or NAT64): connecting to it reaches that address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    embedded = ip.ipv4_mapped or ip.sixtofour
    if embedded is None and ip in _NAT64:
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return embedded


def is_public_address(address: str) -> bool:
    """True if ``address`` (IPv4 or IPv6, scope id allowed) is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if embedded := _embedded_ipv4(ip):
        return is_public_address(str(embedded))
    if any(ip in network for network in _BLOCKED_NETWORKS if network.version == ip.version):
        return False
    return ip.is_global and not (
        ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def private_urls_hint(allow_private: bool) -> str:
    """In development (DEBUG on), name the switch that lets http and private addresses through; never in production."""
    from django.conf import settings

    if allow_private or not settings.DEBUG:
        return ""
    return " In development, set ALLOW_PRIVATE_URLS=true to allow http and private or loopback addresses."


def is_always_blocked(address: str) -> bool:
    """True for link-local and cloud-metadata addresses (also wrapped in IPv6), refused whatever the settings."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if embedded := _embedded_ipv4(ip):
        return is_always_blocked(str(embedded))
    return any(ip in network for network in _ALWAYS_BLOCKED_NETWORKS if network.version == ip.version)


def check_url(
    url: str,
    *,
    allow_private: bool,
    allowed_schemes: tuple[str, ...] = ("https", "http"),
    must_resolve: bool = True,
) -> list[str]:
    """Validate ``url`` and return the IP addresses its host resolves to.

    Raises :class:`UnsafeURLError` with code ``invalid_url`` (malformed, or
    unresolvable when ``must_resolve``), ``url_scheme_not_allowed`` or
    ``url_host_not_allowed`` (some resolved address, A or AAAA, is not public,
    or the host is "localhost"). With ``allow_private`` private and loopback
    addresses pass, but link-local and cloud-metadata ones never do.

    ``must_resolve=False`` is for saving a URL that is fetched later (a
    webhook, a document to download): a host that does not resolve yet is
    accepted (``[]``), since every fetch checks again.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(INVALID_URL, f"{url!r} is not a valid URL.") from exc
    scheme = parts.scheme.lower()
    if scheme not in allowed_schemes:
        hint = private_urls_hint(allow_private) if scheme == "http" else ""
        raise UnsafeURLError(
            URL_SCHEME_NOT_ALLOWED,
            f"URLs must use {' or '.join(allowed_schemes)}, not {scheme or 'no scheme'!r}.{hint}",
        )
    host = parts.hostname
    if not host:
        raise UnsafeURLError(INVALID_URL, f"{url!r} has no host name.")
    if port is None:
        port = 443 if scheme == "https" else 80
    bare_host = host.rstrip(".").lower()
    if bare_host in _METADATA_HOSTNAMES:
        raise UnsafeURLError(URL_HOST_NOT_ALLOWED, f"The host {host!r} is not allowed.")
    if not allow_private and (bare_host in _BLOCKED_HOSTNAMES or bare_host.endswith(".localhost")):
        # Refused by name too: resolvers may map these anywhere (RFC 6761).
        raise UnsafeURLError(
            URL_HOST_NOT_ALLOWED, f"The host {host!r} is not allowed.{private_urls_hint(allow_private)}"
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if not must_resolve:
            return []
        raise UnsafeURLError(INVALID_URL, f"The host {host!r} could not be resolved.") from exc
    except (OSError, UnicodeError, ValueError) as exc:
        # IDNA failures and NUL bytes raise the last two.
        raise UnsafeURLError(INVALID_URL, f"The host {host!r} could not be resolved.") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        if not must_resolve:
            return []
        raise UnsafeURLError(INVALID_URL, f"The host {host!r} could not be resolved.")
    for address in addresses:
        if is_always_blocked(address):
            raise UnsafeURLError(
                URL_HOST_NOT_ALLOWED,
                f"The host {host!r} resolves to {address}, a link-local or cloud metadata address.",
            )
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise UnsafeURLError(
                    URL_HOST_NOT_ALLOWED,
                    f"The host {host!r} resolves to {address}, which is not a public address."
                    f"{private_urls_hint(allow_private)}",
                )
    return addresses


def fetch_url(
    url: str,
    *,
    allow_private: bool,
    max_bytes: int,
    timeout: float,
    max_redirects: int = 5,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    url_checker: Callable[[str], list[str]] | None = None,
) -> FetchedURL:
    """Fetch ``url`` safely and return the final response with its body.

    Every hop (the URL and each redirect target) goes through ``url_checker``
    (by default :func:`check_url` with ``allow_private``) and the connection
    is made to the addresses it returned. Redirects are followed by hand, at
    most ``max_redirects`` of them; 303 (and 301/302 after a POST) switch to
    GET as browsers do. The body is streamed and the fetch aborted past
    ``max_bytes``. ``timeout`` bounds the whole fetch (a single stalled read
    can overrun it by at most its own length). HTTP errors (status >= 400)
    raise :class:`FetchError` with ``status_code`` set.
    """
    checker = url_checker or (lambda target: check_url(target, allow_private=allow_private))
    deadline = time.monotonic() + timeout
    # trust_env=False: an HTTP(S)_PROXY from the environment would make the
    # proxy, not us, choose where the connection goes.
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for _hop in range(max_redirects + 1):
            addresses = checker(url)
            response = _send_pinned(client, method, url, addresses, headers, content, deadline)
            try:
                if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                        method, content = "GET", None
                    continue
                if response.status_code >= 400:
                    raise FetchError(
                        FETCH_FAILED,
                        f"The server answered HTTP {response.status_code}.",
                        status_code=response.status_code,
                    )
                body = _read_limited(response, max_bytes, deadline)
                return FetchedURL(
                    url=url,
                    status_code=response.status_code,
                    content_type=response.headers.get("content-type"),
                    content=body,
                    headers={name.lower(): value for name, value in response.headers.items()},
                )
            finally:
                response.close()
    raise FetchError(FETCH_FAILED, f"More than {max_redirects} redirects.")


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError(FETCH_FAILED, "The fetch timed out.")
    return remaining


def _send_pinned(
    client: httpx.Client,
    method: str,
    url: str,
    addresses: list[str],
    headers: dict[str, str] | None,
    content: bytes | None,
    deadline: float,
) -> httpx.Response:
    """Send the request to one of the checked addresses, trying each in turn.

    The URL's host is replaced by the address itself, while the Host header
    and the TLS server name (SNI, also used to verify the certificate) keep
    the real host name.
    """
    target = httpx.URL(url)
    request_headers = {
        "Host": target.netloc.decode("ascii"),
        # Ask for an uncompressed body: max_bytes then bounds what we inflate.
        "Accept-Encoding": "identity",
        **(headers or {}),
    }
    extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    last_error: Exception | None = None
    for address in addresses:
        request = client.build_request(
            method,
            target.copy_with(host=address.split("%", 1)[0]),
            headers=request_headers,
            content=content,
            timeout=_remaining(deadline),
            extensions=extensions,
        )
        try:
            return client.send(request, stream=True)
        except httpx.ConnectError as exc:
            # Dual-stack hosts: an unreachable IPv6 address is common.
            last_error = exc
        except httpx.HTTPError as exc:
            raise FetchError(FETCH_FAILED, f"The fetch failed: {exc}") from exc
    raise FetchError(FETCH_FAILED, f"Could not connect to {target.host}: {last_error}") from last_error


def _read_limited(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(DOCUMENT_TOO_LARGE, f"The response is larger than {max_bytes:,} bytes.")
    body = bytearray()
    try:
        for part in response.iter_bytes():
            body += part
            if len(body) > max_bytes:
                raise FetchError(DOCUMENT_TOO_LARGE, f"The response is larger than {max_bytes:,} bytes.")
            _remaining(deadline)
    except httpx.HTTPError as exc:
        raise FetchError(FETCH_FAILED, f"The fetch failed while reading: {exc}") from exc
    return bytes(body)
