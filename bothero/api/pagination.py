"""Cursor pagination over the primary key: newest first (or oldest first), stable under inserts.

Rows are ordered by their auto-increment primary key, which is unique and
grows with creation time, so a cursor ("after this row") never skips or
repeats a row when others are added while a client pages. Cursors are opaque.
"""

import base64
import binascii
import json

from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from bothero.errors import ValidationError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": pk}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        if not isinstance(value, int):
            raise ValueError
        return value
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("The cursor is not valid.", code="invalid_cursor", param="cursor") from None


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_LIMIT}.", code="invalid_limit", param="limit")
    return int(raw)


def paginate_queryset(queryset, request, *, ascending: bool = False):
    """Return (rows, has_more, next_cursor) for the `limit` and `cursor` query parameters."""
    limit = parse_limit(request.query_params.get("limit"))
    cursor = request.query_params.get("cursor")
    queryset = queryset.order_by("pk" if ascending else "-pk")
    if cursor:
        after = decode_cursor(cursor)
        queryset = queryset.filter(pk__gt=after) if ascending else queryset.filter(pk__lt=after)
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].pk) if has_more else None
    return rows, has_more, next_cursor


def list_body(data, *, has_more: bool, next_cursor: str | None) -> dict:
    return {"object": "list", "data": data, "has_more": has_more, "next_cursor": next_cursor}


class CursorPagination(BasePagination):
    """DRF adapter so list views and the OpenAPI schema share one list shape."""

    ascending = False

    def paginate_queryset(self, queryset, request, view=None):
        ascending = getattr(view, "paginate_ascending", self.ascending)
        if callable(ascending):
            ascending = ascending(request)
        rows, self.has_more, self.next_cursor = paginate_queryset(queryset, request, ascending=ascending)
        return rows

    def get_paginated_response(self, data):
        return Response(list_body(data, has_more=self.has_more, next_cursor=self.next_cursor))

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["object", "data", "has_more", "next_cursor"],
            "properties": {
                "object": {"type": "string", "enum": ["list"]},
                "data": schema,
                "has_more": {"type": "boolean"},
                "next_cursor": {"type": "string", "nullable": True},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Items per page, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "The `next_cursor` of the previous page.",
                "schema": {"type": "string"},
            },
        ]
