"""Middleware that must wrap every response, API or not."""

from django.conf import settings

from bothero.api.errors import error_response
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
        return response


class BodySizeLimitMiddleware:
    """Refuse a declared body over the limit before anything reads it (413).

    Uploads get `MAX_UPLOAD_BYTES`; every other endpoint takes JSON and gets
    `MAX_JSON_BODY_BYTES`. Bodies sent without a length are capped by Django's
    `DATA_UPLOAD_MAX_MEMORY_SIZE`, which the exception handler maps to 413 too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if request.path.startswith(UPLOAD_PATH_PREFIX):
            limit = settings.MAX_UPLOAD_BYTES
        else:
            limit = settings.MAX_JSON_BODY_BYTES
        if length > limit:
            return error_response(
                413,
                code="request_too_large",
                message=f"The request body is {length} bytes; the limit for this endpoint is {limit} bytes.",
            )
        return self.get_response(request)
