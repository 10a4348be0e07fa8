"""Web origins a publishable key may be used from: parsing what an owner lists, matching what a browser sends.

An allowed origin is `scheme://host[:port]` (http or https, no path), as a
browser sends it in the `Origin` header, or a pattern whose host starts with
one `*.` label for any subdomain: `https://*.acme.example` matches
`https://shop.acme.example` and `https://a.b.acme.example` (not
`https://acme.example` itself, which is listed on its own). A bare `*` and
`https://*.example` (a whole top-level domain) are refused.

Matching needs no loop over the patterns: an origin is turned into the few
patterns that could match it (`origin_candidates`), and a key matches when
its list shares one of them — a single indexed array-overlap query for
"does any key allow this origin?".
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGIN_LENGTH = 255
# A DNS label, or an IPv4 address's digits: lowercase letters, digits and hyphens, not at the ends.
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class InvalidOrigin(ValueError):
    pass


def _split(origin: str) -> tuple[str, str, int | None]:
    """(scheme, host, port or None for the scheme's default) of a well-formed origin, else InvalidOrigin."""
    if len(origin) > MAX_ORIGIN_LENGTH:
        raise InvalidOrigin(f"An origin is at most {MAX_ORIGIN_LENGTH} characters.")
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        raise InvalidOrigin(f"{origin!r} is not an origin such as https://www.example.com.") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        raise InvalidOrigin(f"{origin!r} is not an origin such as https://www.example.com (http or https).")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidOrigin(f"{origin!r} has more than scheme, host and port: list the origin only.")
    if port == DEFAULT_PORTS[scheme]:
        port = None
    return scheme, host, port


def _join(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{host}" if port is None else f"{scheme}://{host}:{port}"


def allowed_origin_normalise(value: str) -> str:
    """The canonical form of an origin (or `*.` pattern) an owner lists; InvalidOrigin when it is not one."""
    if value.strip() in ("*", "null"):
        raise InvalidOrigin("List the websites' origins: a bare '*' (any website) is not allowed.")
    scheme, host, port = _split(value)
    labels = host.split(".")
    wildcard = labels[0] == "*"
    if wildcard:
        labels = labels[1:]
        if len(labels) < 2:
            raise InvalidOrigin(f"{value!r}: a wildcard covers subdomains of a domain, such as https://*.example.com.")
    if not labels or not all(LABEL.match(label) for label in labels):
        raise InvalidOrigin(f"{value!r} has an invalid host name.")
    return _join(scheme, host, port)


def origin_candidates(origin: str) -> list[str]:
    """The allowed-origin entries that would admit a browser's `origin`: itself and its `*.` parents.

    An `Origin` that is not a valid http(s) origin (such as `null`) has none.
    """
    try:
        scheme, host, port = _split(origin)
    except InvalidOrigin:
        return []
    labels = host.split(".")
    candidates = [_join(scheme, host, port)]
    # *.b.c for a.b.c, down to two labels after the star (never *.com).
    for start in range(1, len(labels) - 1):
        candidates.append(_join(scheme, "*." + ".".join(labels[start:]), port))
    return candidates


def origin_allowed(origin: str, allowed: list[str]) -> bool:
    return not set(origin_candidates(origin)).isdisjoint(allowed)
