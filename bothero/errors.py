"""Errors as data: one family of exceptions that the API turns into its envelope.

Services raise these; `bothero.api.errors.exception_handler` renders them as
`{"error": {"type", "code", "message", "param", "request_id"}}`. Codes are stable
strings that clients can switch on.
"""

from __future__ import annotations


class ApplicationError(Exception):
    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        param: str | None = None,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}


class ValidationError(ApplicationError):
    status_code = 400
    default_code = "invalid_request"


class NotFoundError(ApplicationError):
    status_code = 404
    default_code = "not_found"


class ConflictError(ApplicationError):
    status_code = 409
    default_code = "conflict"


class UnprocessableError(ApplicationError):
    status_code = 422
    default_code = "unprocessable"


# Sent with every 401 (RFC 6750): the API takes Bearer credentials.
WWW_AUTHENTICATE = 'Bearer realm="api"'


class AuthenticationError(ApplicationError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_credentials"


class PermissionDeniedError(ApplicationError):
    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class PlanLimitError(PermissionDeniedError):
    default_code = "plan_limit_reached"


class RateLimitError(ApplicationError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(ApplicationError):
    status_code = 502
    error_type = "api_error"
    default_code = "upstream_error"


class ServiceUnavailableError(ApplicationError):
    """A dependency (the database, Redis) is down: the client should retry after `Retry-After` seconds."""

    status_code = 503
    error_type = "api_error"
    default_code = "service_unavailable"

    def __init__(self, message: str, code: str | None = None, param: str | None = None, *, retry_after: int = 5):
        super().__init__(message, code, param, headers={"Retry-After": str(retry_after)})
