"""The SSRF rules for webhook URLs, on top of `bothero.netguard`.

https only (http too when `ALLOW_PRIVATE_URLS`), and every address the host
resolves to (A and AAAA) must be public unless private addresses are allowed.
Link-local and cloud-metadata addresses are refused always. Checked when an
endpoint is created or its URL changed (a host that does not resolve yet is
accepted then), and again before every delivery attempt.
"""

import httpx

from bothero.netguard import UnsafeURLError, check_url


class BlockedAddressError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_webhook_url(url: str, *, allow_private: bool, must_resolve: bool = True) -> list[str]:
    """The addresses `url`'s host resolves to, all allowed; else BlockedAddressError (with netguard's code)."""
    schemes = ("https", "http") if allow_private else ("https",)
    try:
        return check_url(url, allow_private=allow_private, allowed_schemes=schemes, must_resolve=must_resolve)
    except UnsafeURLError as exc:
        raise BlockedAddressError(exc.code, exc.message) from None


def resolve_checked(url: str, *, allow_private: bool) -> tuple[str, list[str]]:
    """(host as the HTTP client names it, the checked addresses to connect to)."""
    addresses = check_webhook_url(url, allow_private=allow_private)
    try:
        host = httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise BlockedAddressError("invalid_url", f"{url!r} is not a valid URL.") from exc
    return host, [address.split("%", 1)[0] for address in addresses]
