"""Leads as CSV, streamed in keyset-paginated chunks, safe to open in a spreadsheet (see bothero.api.csvcells)."""

from asgiref.sync import sync_to_async
from rest_framework.fields import DateTimeField

from bothero.api import csvcells
from bothero.api.csvcells import csv_line

CSV_COLUMNS = [
    "id",
    "name",
    "email",
    "phone",
    "bot_id",
    "conversation_id",
    "captured_at",
    "message_id",
    "message",
]
# Where each column comes from (the same values LeadSerializer gives the JSON list).
CSV_SOURCES = [
    "public_id",
    "name",
    "email",
    "phone",
    "bot__public_id",
    "conversation__public_id",
    "captured_at",
    "message__public_id",
    "message__content",
]
_timestamp = DateTimeField()
CHUNK_SIZE = 500


def csv_header() -> str:
    return csvcells.csv_header(CSV_COLUMNS)


def csv_chunk(leads, after_pk: int | None) -> tuple[str, int | None]:
    """The CSV of the next chunk of leads, newest first, after `after_pk`; ("", None) at the end.

    Plain values rather than a serializer per row: an export of thousands of leads stays quick.
    """
    page = leads.order_by("-pk")
    if after_pk is not None:
        page = page.filter(pk__lt=after_pk)
    chunk = list(page.values_list("pk", *CSV_SOURCES)[:CHUNK_SIZE])
    if not chunk:
        return "", None
    captured_at = CSV_SOURCES.index("captured_at")
    lines = []
    for _, *values in chunk:
        values[captured_at] = _timestamp.to_representation(values[captured_at])
        lines.append(csv_line(values))
    return "".join(lines), chunk[-1][0]


def iter_leads_csv(leads):
    """The whole CSV, chunk by chunk (for WSGI servers and the test client)."""
    yield csv_header()
    text, after = csv_chunk(leads, None)
    while after is not None:
        yield text
        text, after = csv_chunk(leads, after)


async def aiter_leads_csv(leads):
    """The same CSV as an async iterator, so ASGI servers stream it instead of buffering it whole."""
    yield csv_header()
    text, after = await sync_to_async(csv_chunk)(leads, None)
    while after is not None:
        yield text
        text, after = await sync_to_async(csv_chunk)(leads, after)
