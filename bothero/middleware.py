"""Middleware that must wrap every response, API or not."""

from functools import partial

from django.conf import settings

from bothero.api.errors import DATABASE_UNAVAILABLE_ERRORS, database_unavailable_response, error_response
from bothero.api.throttling import api_request_count
from bothero.ids import random_base62
from bothero.request_context import current_request_id

UPLOAD_PATH_PREFIX = "/v1/knowledge/upload"


class RequestIdMiddleware:
    """Give every request an id (`req_...`), echoed in `X-Request-Id` and in error bodies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = f"req_{random_base62(24)}"
        request.request_id = request_id
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-Id"] = request_id
        for name, value in getattr(request, "rate_limit_headers", {}).items():
            response[name] = value
        tenant = getattr(request, "api_request_tenant", None)  # set by the API's rate limiter
        if tenant is not None:
            # Django calls a response's closers once it has been sent (and the test client once it
            # has it), in the request's thread: the usage counter is written off the request's path.
            response._resource_closers.append(partial(api_request_count, tenant))
        return response

    def process_exception(self, request, exception):
        """Views outside DRF (admin, probes, docs): the database being down is a 503, not a 500.

        DRF views answer the same through `bothero.api.errors.exception_handler`.
        """
        if isinstance(exception, DATABASE_UNAVAILABLE_ERRORS):
            return database_unavailable_response()
        return None


def body_limit_for(path: str) -> int:
    """Uploads get MAX_UPLOAD_BYTES; every other endpoint takes JSON and gets MAX_JSON_BODY_BYTES."""
    return settings.MAX_UPLOAD_BYTES if path.startswith(UPLOAD_PATH_PREFIX) else settings.MAX_JSON_BODY_BYTES


def too_large_message(length: int | None, limit: int) -> str:
    size = f"is {length} bytes" if length is not None else "is larger than that"
    return f"The request body {size}; the limit for this endpoint is {limit} bytes."


class BodySizeLimitMiddleware:
    """Refuse a declared body over the limit (413), for requests that reach Django without the ASGI guard.

    Under uvicorn, `BodySizeLimitASGI` below answers first, before the body is
    received; this keeps the rule for the WSGI entry point and the test client.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = body_limit_for(request.path)
        if length > limit:
            return error_response(413, code="request_too_large", message=too_large_message(length, limit))
        return self.get_response(request)


class BodySizeLimitASGI:
    """ASGI guard: refuse an oversized body before it is received (413 in the error envelope).

    Django's ASGI handler reads the whole body (spooling to disk) before any
    middleware runs, so a Django middleware can only refuse a huge body after
    it has arrived. Here a declared `Content-Length` over the limit is answered
    at once, without reading the body; a body sent without a length (chunked)
    is read up to the limit and refused as soon as it passes it (or, within
    the limit, passed on with its length, which DRF needs to parse it).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit_for(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = 0
            if length > limit:
                return await self._refuse(send, too_large_message(length, limit))
            return await self.app(scope, receive, send)
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            return await self.app(scope, receive, send)
        # No declared length: take the body in, up to the limit, then hand it on.
        messages, received = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                messages.append(message)
                break
            received += len(message.get("body", b""))
            if received > limit:
                return await self._refuse(send, too_large_message(None, limit))
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay():
            if messages:
                return messages.pop(0)
            return await receive()

        # The length is known now: say it, since DRF reads no body from a request without one.
        scope = {
            **scope,
            "headers": [
                *[
                    (name, value)
                    for name, value in scope["headers"]
                    if name not in (b"content-length", b"transfer-encoding")
                ],
                (b"content-length", str(received).encode()),
            ],
        }
        return await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send, message: str) -> None:
        request_id = f"req_{random_base62(24)}"
        token = current_request_id.set(request_id)
        try:
            response = error_response(413, code="request_too_large", message=message)
        finally:
            current_request_id.reset(token)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(response.content)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.content})
