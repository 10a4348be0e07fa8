"""Cursor pagination over the primary key: newest first (or oldest first), stable under inserts.

Rows are ordered by their auto-increment primary key, which is unique and
grows with creation time, so a cursor ("after this row") never skips or
repeats a row when others are added while a client pages. Cursors are opaque
to clients: a position written in base 62, at most 10 characters, so that every
string the schema's pattern allows is a cursor the server accepts, and every
other string is refused (400).

The position is not shown as it is: primary keys are shared by every tenant,
so two cursors a few days apart would tell a client how many rows the whole
platform created in between. A keyed permutation of the positions a cursor
can hold (a Feistel network with cycle-walking, keyed from SECRET_KEY) turns
consecutive keys into unrelated cursors; it is a bijection, so decoding stays
exact and every pattern-valid cursor is still some position.
"""

import hashlib
import hmac
import re
from functools import cache

from django.conf import settings
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from bothero.errors import ValidationError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


CURSOR_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CURSOR_PATTERN = r"^[0-9A-Za-z]{1,10}$"
CURSOR_SCHEMA = {"type": "string", "pattern": CURSOR_PATTERN, "minLength": 1, "maxLength": 10}
_CURSOR_RE = re.compile(CURSOR_PATTERN)
_LIMIT_RE = re.compile(r"^[0-9]{1,3}$")


#: Positions a cursor can hold: every number of at most 10 base-62 digits.
CURSOR_POSITIONS = 62**10
_HALF_BITS = 30  # the Feistel network permutes 60-bit numbers; 2**60 > CURSOR_POSITIONS
_HALF_MASK = (1 << _HALF_BITS) - 1
_ROUNDS = 4


@cache
def _round_keys(secret_key: str) -> tuple[bytes, ...]:
    base = hmac.new(secret_key.encode(), b"bothero.pagination.cursor", hashlib.sha256).digest()
    return tuple(hashlib.sha256(base + bytes([number])).digest() for number in range(_ROUNDS))


def _round(key: bytes, half: int) -> int:
    digest = hashlib.blake2b(half.to_bytes(4, "big"), key=key, digest_size=4).digest()
    return int.from_bytes(digest, "big") & _HALF_MASK


def _feistel(value: int, keys: tuple[bytes, ...]) -> int:
    left, right = value >> _HALF_BITS, value & _HALF_MASK
    for key in keys:
        left, right = right, left ^ _round(key, right)
    return (left << _HALF_BITS) | right


def _feistel_inverse(value: int, keys: tuple[bytes, ...]) -> int:
    left, right = value >> _HALF_BITS, value & _HALF_MASK
    for key in reversed(keys):
        left, right = right ^ _round(key, left), left
    return (left << _HALF_BITS) | right


def _permute(position: int, step) -> int:
    """`step` (a permutation of 60-bit numbers) walked until it lands under CURSOR_POSITIONS: a permutation
    of 0..CURSOR_POSITIONS-1 (cycle-walking; about 1.4 steps on average)."""
    keys = _round_keys(settings.SECRET_KEY)
    position = step(position, keys)
    while position >= CURSOR_POSITIONS:
        position = step(position, keys)
    return position


def encode_cursor(position: int) -> str:
    if not 0 <= position < CURSOR_POSITIONS:
        raise ValueError(f"A cursor holds a position from 0 to {CURSOR_POSITIONS - 1}, not {position}.")
    position = _permute(position, _feistel)
    digits = []
    while True:
        position, digit = divmod(position, 62)
        digits.append(CURSOR_ALPHABET[digit])
        if not position:
            return "".join(reversed(digits))


def decode_cursor(cursor: str) -> int:
    # re.ASCII is not needed: the character class names ASCII ranges only; fullmatch refuses a trailing newline.
    if not _CURSOR_RE.fullmatch(cursor):
        raise ValidationError("The cursor is not valid.", code="invalid_cursor", param="cursor")
    position = 0
    for char in cursor:
        position = position * 62 + CURSOR_ALPHABET.index(char)
    return _permute(position, _feistel_inverse)


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    # Not str.isdigit(): it is true for "²", which int() refuses.
    if not _LIMIT_RE.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_LIMIT}.", code="invalid_limit", param="limit")
    return int(raw)


def paginate_queryset(queryset, request, *, ascending: bool = False):
    """Return (rows, has_more, next_cursor) for the `limit` and `cursor` query parameters."""
    limit = parse_limit(request.query_params.get("limit"))
    cursor = request.query_params.get("cursor")
    queryset = queryset.order_by("pk" if ascending else "-pk")
    if cursor is not None:
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
                "schema": dict(CURSOR_SCHEMA),
            },
        ]
