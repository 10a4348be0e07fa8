"""What a publishable key (`pk_live_`) may do, enforced in the request pipeline.

A view opts in by listing, in `publishable_key_actions`, the viewset actions
(or, for a plain APIView, the lowercase HTTP methods) a publishable key may
call. Everything else answers 403 `publishable_key_not_allowed`. On the views
that allow it, a request with a publishable key must:

* come from one of the key's allowed origins (`Origin`; the API's own origin
  too, which is where the hosted chat page lives) — else 403
  `origin_not_allowed`;
* name its visitor (`X-BotHero-Visitor`, a random id the widget keeps in
  localStorage), which scopes the conversations it may see;
* identify a signed-in user with `X-BotHero-User-Id` and
  `X-BotHero-User-Hash` when the key verifies identities;
* stay within the key's per-visitor and per-address rate limits
  (`VisitorRateThrottle`), before the tenant's own plan limit is counted.

A live stream (`GET /v1/conversations/:id/events`) also takes a slot per
visitor and per client address for as long as it is open
(`visitor_stream_open`), and lasts at most `WIDGET_EVENTS_MAX_SECONDS`.

CORS follows the same opt-in: `cors_allows_request` (django-cors-headers'
`check_request_enabled` signal) answers only on those views, and only for
origins that some live publishable key lists.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import Resolver404, resolve
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiKey
from accounts.origins import origin_allowed
from accounts.selectors import publishable_origin_allowed
from accounts.services import publishable_key_not_allowed, visitor_identity_verify
from bothero import ratelimit
from bothero.errors import PermissionDeniedError, RateLimitError, ValidationError

VISITOR_HEADER = "X-BotHero-Visitor"
USER_ID_HEADER = "X-BotHero-User-Id"
USER_HASH_HEADER = "X-BotHero-User-Hash"
VISITOR_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_USER_ID_LENGTH = 200


@dataclass(frozen=True)
class Visitor:
    """The person in the browser behind a publishable key's request."""

    # SHA-256 of the visitor id: conversations store this, so a database copy cannot impersonate a visitor.
    visitor_hash: str
    # The verified id of a signed-in user of the customer's site ("" when anonymous).
    user_id: str


def publishable_key_of(request) -> ApiKey | None:
    key = getattr(request.user, "api_key", None)
    return key if key is not None and key.is_publishable else None


def view_allows_publishable_key(view_class, action: str) -> bool:
    return action in getattr(view_class, "publishable_key_actions", ())


def request_origin(request) -> str:
    """The browser's origin: the `Origin` header, or this server's own for a same-origin request without one.

    Browsers leave `Origin` off same-origin GETs (the hosted chat page); they
    mark them `Sec-Fetch-Site: same-origin`. A client outside a browser can
    claim any origin either way: the origin check protects browsers' users,
    not the key, which is public by design.
    """
    origin = request.headers.get("Origin", "")
    if not origin and request.headers.get("Sec-Fetch-Site") == "same-origin":
        origin = own_origin(request)
    return origin


def own_origin(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


def is_own_origin(request, origin: str) -> bool:
    """Whether `origin` is this API's own (the hosted chat page's): the same host and port.

    The scheme is not compared: behind a proxy that ends TLS, the request
    reaches Django as http while the page's origin is https.
    """
    return bool(origin) and urlsplit(origin).netloc.lower() == request.get_host().lower()


def visitor_from_headers(request, api_key: ApiKey) -> Visitor:
    visitor_id = request.headers.get(VISITOR_HEADER, "")
    if not VISITOR_ID_PATTERN.match(visitor_id):
        raise ValidationError(
            f"Send a visitor id in {VISITOR_HEADER}: 16 to 64 characters of [A-Za-z0-9_-], random per browser "
            "(the widget keeps one in localStorage).",
            code="visitor_id_required",
            param=VISITOR_HEADER,
        )
    user_id = request.headers.get(USER_ID_HEADER, "").strip()
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise ValidationError(
            f"{USER_ID_HEADER} is at most {MAX_USER_ID_LENGTH} characters.", code="invalid_user_id", param="user_id"
        )
    user_id = visitor_identity_verify(
        api_key=api_key, user_id=user_id, user_hash=request.headers.get(USER_HASH_HEADER, "")
    )
    return Visitor(visitor_hash=hashlib.sha256(visitor_id.encode()).hexdigest(), user_id=user_id)


class PublishableKeyPolicy(BasePermission):
    """A publishable key only on the views that allow it, from its origins, with its visitor (see module doc)."""

    def has_permission(self, request, view):
        api_key = publishable_key_of(request)
        if api_key is None:
            return True
        if not view_allows_publishable_key(type(view), getattr(view, "action", None) or request.method.lower()):
            raise publishable_key_not_allowed()
        origin = request_origin(request)
        if not (origin_allowed(origin, api_key.allowed_origins) or is_own_origin(request, origin)):
            raise PermissionDeniedError(
                f"This key may not be used from {origin or 'a page without an Origin'}: add the website's origin "
                "to the key's allowed_origins.",
                code="origin_not_allowed",
            )
        request.user.visitor = visitor_from_headers(request, api_key)
        return True


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


class VisitorRateThrottle(BaseThrottle):
    """A publishable key's per-visitor and per-client-address limits (requests per minute, from the key).

    Runs before the tenant's plan limit: a visitor over its own limit is
    refused without spending the tenant's budget.
    """

    def allow_request(self, request, view):
        api_key = publishable_key_of(request)
        visitor = getattr(request.user, "visitor", None)
        if api_key is None or visitor is None:
            return True
        checks = (
            ("visitor", visitor.visitor_hash, api_key.limit("visitor_requests_per_minute")),
            ("address", client_address(request), api_key.limit("address_requests_per_minute")),
        )
        for scope, who, limit in checks:
            result = ratelimit.hit(f"pk:{api_key.public_id}:{scope}:{who}", limit=limit)
            if not result.allowed:
                raise RateLimitError(
                    f"Too many messages from this {'visitor' if scope == 'visitor' else 'network address'}. "
                    f"Wait {result.reset_seconds} seconds and try again.",
                    code=f"{scope}_rate_limited",
                    headers={"Retry-After": str(result.reset_seconds)},
                )
        return True


# How long a refused stream should wait before trying again: a slot frees when another stream of the visitor ends.
STREAM_RETRY_SECONDS = 30


def visitor_stream_open(request, api_key: ApiKey) -> Callable[[], None]:
    """Take a live-stream slot for the request's visitor and for its client address, or raise 429
    `too_many_streams`; returns what gives them back (call it when the stream ends; calling it again does nothing).

    The slots are held for at most the stream's longest life (`WIDGET_EVENTS_MAX_SECONDS`, plus a heartbeat),
    so a stream whose end is never seen (a killed process) frees its slots when that time has passed.
    """
    ttl = settings.WIDGET_EVENTS_MAX_SECONDS + settings.CHAT_HEARTBEAT_SECONDS + 5
    wanted = (
        (
            f"pk:{api_key.public_id}:streams:visitor:{request.user.visitor.visitor_hash}",
            "visitor",
            settings.WIDGET_EVENTS_STREAMS_PER_VISITOR,
        ),
        (f"streams:address:{client_address(request)}", "network address", settings.WIDGET_EVENTS_STREAMS_PER_ADDRESS),
    )
    taken: list[tuple[str, str]] = []

    def release() -> None:
        # Called by the stream's end and by the response's close (two threads, maybe at once): each slot
        # is given back once (list.pop is atomic).
        while True:
            try:
                key, token = taken.pop()
            except IndexError:
                return
            ratelimit.slot_release(key, token)

    for key, who, limit in wanted:
        token = ratelimit.slot_acquire(key, limit=limit, ttl_seconds=ttl)
        if token is None:
            release()
            raise RateLimitError(
                f"Too many live streams open from this {who} (at most {limit}). Close one, or wait "
                f"{STREAM_RETRY_SECONDS} seconds and try again.",
                code="too_many_streams",
                headers={"Retry-After": str(STREAM_RETRY_SECONDS)},
            )
        taken.append((key, token))
    return release


def cors_allows_request(sender, request, **kwargs) -> bool:
    """django-cors-headers' per-request check: CORS only on a publishable key's views, for a listed origin.

    A preflight names its method in `Access-Control-Request-Method`; a
    viewset's URL maps methods to actions. The origin is checked against
    every live publishable key, since a preflight carries no key; the
    request that follows is checked against its own key's origins.
    """
    cached = getattr(request, "_publishable_cors", None)
    if cached is None:
        cached = request._publishable_cors = _cors_allows(request)
    return cached


def _cors_allows(request) -> bool:
    origin = request.headers.get("Origin", "")
    if not origin:
        return False
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    view_class = getattr(match.func, "cls", None)
    if view_class is None:
        return False
    method = request.method
    if method == "OPTIONS":
        method = request.headers.get("Access-Control-Request-Method", "")
    method = method.lower()
    actions = getattr(match.func, "actions", None)
    action = actions.get(method) if actions else method
    if not action or not view_allows_publishable_key(view_class, action):
        return False
    return publishable_origin_allowed(origin=origin)
