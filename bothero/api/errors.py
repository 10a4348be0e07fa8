"""One error envelope for everything the API answers.

`{"error": {"type", "code", "message", "param", "request_id"}}`. DRF's own
exceptions, Django's, ours (`bothero.errors`) and unexpected ones all come
through `exception_handler`; Django's 404/500 pages through `handler404` and
`handler500`.
"""

import logging

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from psycopg_pool import PoolTimeout
from rest_framework import exceptions as drf_exceptions
from rest_framework.views import set_rollback

from bothero.errors import WWW_AUTHENTICATE, ApplicationError
from bothero.request_context import current_request_id

logger = logging.getLogger(__name__)

TYPE_BY_STATUS = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}

# Errors that say the database cannot be reached right now (down, restarting, refusing connections,
# no pooled connection within the pool's timeout), as opposed to a bug: the client may retry.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeout)
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_MESSAGE = "The service is temporarily unavailable (its database cannot be reached). Retry shortly."


def error_type_for(status: int) -> str:
    if status >= 500:
        return "api_error"
    return TYPE_BY_STATUS.get(status, "invalid_request_error")


def error_body(status: int, *, code: str, message: str, param: str | None = None, error_type: str | None = None):
    return {
        "error": {
            "type": error_type or error_type_for(status),
            "code": code,
            "message": message,
            "param": param,
            "request_id": current_request_id.get(),
        }
    }


def error_response(status: int, *, code: str, message: str, param=None, error_type=None, headers=None):
    response = JsonResponse(
        error_body(status, code=code, message=message, param=param, error_type=error_type), status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    if status == 401:
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def _first_validation_error(detail, path=()):
    """Walk DRF's nested error detail to the first message and the field it is about."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub_path = path if key == "non_field_errors" else (*path, str(key))
            return _first_validation_error(value, sub_path)
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                return _first_validation_error(value, (*path, str(index)) if isinstance(value, dict) else path)
            return path, value
    return path, detail


def _validation_code(drf_code: str | None) -> str:
    """DRF's field error codes as ours: `required` → `missing_param`, `max_length` → `invalid_max_length`."""
    if drf_code in (None, "invalid"):
        return "invalid_request"
    if drf_code == "required":
        return "missing_param"
    if drf_code == "unknown_parameter":
        return drf_code
    return drf_code if drf_code.startswith("invalid_") else f"invalid_{drf_code}"


def _translate(exc):
    """Return (status, code, message, param, headers) for any exception."""
    if isinstance(exc, ApplicationError):
        return exc.status_code, exc.code, exc.message, exc.param, exc.headers, exc.error_type
    if isinstance(exc, drf_exceptions.ValidationError):
        path, message = _first_validation_error(exc.detail)
        code = _validation_code(getattr(message, "code", None))
        param = ".".join(path) or None
        text = f"{param}: {message}" if param else str(message)
        return 400, code, text, param, {}, None
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        return 401, "missing_credentials", "Send your API key as 'Authorization: Bearer <key>'.", None, {}, None
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) and codes != "authentication_failed" else "invalid_credentials"
        return 401, code, str(exc.detail), None, {}, None
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(exc.wait or 1)
        headers = {"Retry-After": str(max(wait, 1))}
        return 429, "rate_limit_exceeded", f"Too many requests. Retry in {max(wait, 1)} seconds.", None, headers, None
    if isinstance(exc, (drf_exceptions.PermissionDenied, DjangoPermissionDenied)):
        return 403, "permission_denied", str(getattr(exc, "detail", "Permission denied.")), None, {}, None
    if isinstance(exc, (drf_exceptions.NotFound, Http404)):
        return 404, "not_found", "The requested resource does not exist.", None, {}, None
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return 405, "method_not_allowed", str(exc.detail), None, {}, None
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return 415, "unsupported_media_type", str(exc.detail), None, {}, None
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return 406, "not_acceptable", str(exc.detail), None, {}, None
    if isinstance(exc, drf_exceptions.ParseError):
        return 400, "invalid_json", f"The request body could not be parsed: {exc.detail}", None, {}, None
    if isinstance(exc, RequestDataTooBig):
        return 413, "request_too_large", "The request body is too large.", None, {}, None
    if isinstance(exc, (BadRequest, SuspiciousOperation)):
        return 400, "bad_request", "The request could not be understood.", None, {}, None
    if isinstance(exc, drf_exceptions.APIException):
        return exc.status_code, str(exc.get_codes()), str(exc.detail), None, {}, None
    if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
        logger.warning("Database unavailable: %s", exc)
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        return 503, "service_unavailable", DATABASE_UNAVAILABLE_MESSAGE, None, headers, None
    logger.exception("Unhandled error", exc_info=exc)
    return 500, "internal_error", "Something went wrong on our side. It has been logged.", None, {}, None


def exception_handler(exc, context):
    status, code, message, param, headers, error_type = _translate(exc)
    set_rollback()
    return error_response(status, code=code, message=message, param=param, error_type=error_type, headers=headers)


def handler404(request, exception=None):
    return error_response(404, code="not_found", message=f"No route for {request.method} {request.path}.")


@csrf_exempt
def route_not_found(request, *args, **kwargs):
    """The last URL pattern: unknown paths answer the envelope even with DEBUG on (no HTML debug page).

    Exempt from CSRF: a POST to an unknown path (`POST /v1/webhooks/`, a trailing slash) is a 404 in the
    envelope, not Django's HTML "CSRF verification failed" page.
    """
    return handler404(request)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the envelope, not Django's HTML page (the admin is the only view that checks CSRF)."""
    return error_response(403, code="csrf_failed", message=f"CSRF verification failed: {reason}")


def database_unavailable_response():
    """503 `service_unavailable` with Retry-After: what a request answers while the database is down."""
    return error_response(
        503,
        code="service_unavailable",
        message=DATABASE_UNAVAILABLE_MESSAGE,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def handler500(request):
    return error_response(500, code="internal_error", message="Something went wrong on our side. It has been logged.")


def handler400(request, exception=None):
    return error_response(400, code="bad_request", message="The request could not be understood.")


def handler403(request, exception=None):
    return error_response(403, code="permission_denied", message="Permission denied.")
