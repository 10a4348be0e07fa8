"""The id of the request being served, for error bodies and logs."""

from contextvars import ContextVar

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
