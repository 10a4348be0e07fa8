import csv
import io
from datetime import UTC, datetime

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from analytics.tests.conftest import TimedMessageFactory, chat, lead_at
from bothero.testing.factories import BotFactory
from bothero.testing.processes import uvicorn_server
from conftest import make_actor
from conversations.models import Lead


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def read_csv(content: bytes) -> list[list[str]]:
    text = content.decode("utf-8")
    assert text.startswith("\ufeff"), "Excel needs the byte-order mark to read UTF-8"
    return list(csv.reader(io.StringIO(text[1:], newline="")))


@pytest.fixture
def leads(alice_bot):
    conversation = chat(alice_bot, utc(2026, 2, 10, 9), end_user_id="visitor-1")
    question = TimedMessageFactory(
        conversation=conversation, content="I'm Ann, ann@example.com", at=utc(2026, 2, 10, 9, 2)
    )
    first = lead_at(
        conversation, utc(2026, 2, 10, 9, 3), name="Ann", email="ann@example.com", phone="", message=question
    )
    second = lead_at(chat(alice_bot, utc(2026, 2, 12, 9)), utc(2026, 2, 12, 9, 1), name="Bob", email="bob@example.com")
    lead_at(chat(alice_bot, utc(2026, 1, 1)), utc(2026, 1, 1, 0, 1), name="Too early")
    return first, second


def test_it_lists_leads_newest_first_with_their_conversation_and_message(alice, alice_bot, leads):
    first, second = leads
    response = alice.client.get("/v1/analytics/leads", {"start": "2026-02-01", "end": "2026-02-28"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "list"
    assert body["has_more"] is False
    assert [lead["id"] for lead in body["data"]] == [second.public_id, first.public_id]
    assert body["data"][1] == {
        "id": first.public_id,
        "object": "lead",
        "name": "Ann",
        "email": "ann@example.com",
        "phone": "",
        "bot_id": alice_bot.public_id,
        "conversation_id": first.conversation.public_id,
        "captured_at": "2026-02-10T09:03:00Z",
        "message_id": first.message.public_id,
        "message": "I'm Ann, ann@example.com",
        "end_user_id": first.conversation.end_user_id,
    }
    assert body["data"][0]["message_id"] is None
    assert body["data"][0]["id"].startswith("lead_")


def test_it_pages_through_leads_with_a_cursor(alice, alice_bot):
    conversation = chat(alice_bot, utc(2026, 2, 1))
    made = [lead_at(conversation, utc(2026, 2, 1, 1, n), email=f"p{n}@example.com") for n in range(5)]
    seen, cursor = [], None
    while True:
        params = {"start": "2026-02-01", "end": "2026-02-02", "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = alice.client.get("/v1/analytics/leads", params).json()
        seen += [lead["id"] for lead in body["data"]]
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert seen == [lead.public_id for lead in reversed(made)]


def test_it_filters_leads_by_bot(alice, alice_bot, leads):
    other = BotFactory(tenant=alice.tenant)
    lead_at(chat(other, utc(2026, 2, 11)), utc(2026, 2, 11, 0, 1), name="Other")
    body = alice.client.get(
        "/v1/analytics/leads", {"start": "2026-02-01", "end": "2026-02-28", "bot_id": other.public_id}
    ).json()
    assert [lead["name"] for lead in body["data"]] == ["Other"]


def test_an_outsider_sees_none_of_the_leads_and_gets_404_for_the_bot(charlie, alice_bot, leads):
    body = charlie.client.get("/v1/analytics/leads", {"start": "2026-02-01", "end": "2026-02-28"}).json()
    assert body["data"] == []
    response = charlie.client.get("/v1/analytics/leads", {"bot_id": alice_bot.public_id})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bot_not_found"


@pytest.mark.parametrize("how", ["query", "accept"])
def test_it_exports_the_same_leads_as_csv(alice, alice_bot, leads, how):
    params = {"start": "2026-02-01", "end": "2026-02-28"}
    if how == "query":
        response = alice.client.get("/v1/analytics/leads", {**params, "format": "csv"})
    else:
        response = alice.client.get("/v1/analytics/leads", params, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="leads-20260201-20260301.csv"'
    assert response["X-Request-Id"].startswith("req_")
    rows = read_csv(b"".join(response.streaming_content))
    json_rows = alice.client.get("/v1/analytics/leads", params).json()["data"]
    assert rows[0] == [
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
    assert [dict(zip(rows[0], row, strict=True)) for row in rows[1:]] == [
        {column: "" if lead[column] is None else lead[column] for column in rows[0]} for lead in json_rows
    ]


def test_json_is_the_default_for_other_accept_headers(alice, leads):
    response = alice.client.get(
        "/v1/analytics/leads", {"start": "2026-02-01"}, HTTP_ACCEPT="application/json, text/csv"
    )
    assert response["Content-Type"] == "application/json"
    response = alice.client.get("/v1/analytics/leads", {"start": "2026-02-01"}, HTTP_ACCEPT="text/html")
    assert response["Content-Type"] == "application/json"


def test_an_unknown_format_is_a_400(alice):
    response = alice.client.get("/v1/analytics/leads", {"format": "xml"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_format"
    assert response.json()["error"]["param"] == "format"


NASTY = {
    "name": '=HYPERLINK("http://evil.example","click")',
    "phone": "+1 (555) 010-9999",
    "message": 'Hi, I said "call me"\nafter 5pm, please',
}


def test_csv_cells_are_escaped_and_formulas_defused(alice, alice_bot):
    conversation = chat(alice_bot, utc(2026, 2, 10))
    message = TimedMessageFactory(conversation=conversation, content=NASTY["message"], at=utc(2026, 2, 10, 0, 1))
    lead_at(
        conversation,
        utc(2026, 2, 10, 0, 2),
        name=NASTY["name"],
        phone=NASTY["phone"],
        email="x@example.com",
        message=message,
    )
    for name in ("-2+3", "@SUM(A1)", "\tTabbed", "\rReturn", "Smith, Jane"):
        lead_at(
            chat(alice_bot, utc(2026, 2, 11)), utc(2026, 2, 11, 0, 1), name=name, email=f"{abs(hash(name))}@example.com"
        )
    response = alice.client.get("/v1/analytics/leads", {"start": "2026-02-10", "end": "2026-02-11", "format": "csv"})
    raw = b"".join(response.streaming_content).decode("utf-8")
    rows = read_csv(raw.encode())
    by_email = {row[2]: row for row in rows[1:]}
    nasty = by_email["x@example.com"]
    assert nasty[1] == "'" + NASTY["name"]
    assert nasty[3] == "'" + NASTY["phone"]
    assert nasty[8] == NASTY["message"]  # the quote and the newline survive, quoted by the csv module
    assert '"Hi, I said ""call me""\nafter 5pm, please"' in raw
    names = sorted(row[1] for row in rows[1:] if row[2] != "x@example.com")
    assert names == sorted(["'-2+3", "'@SUM(A1)", "'\tTabbed", "'\rReturn", "Smith, Jane"])
    assert '"Smith, Jane"' in raw
    assert all(not row[1].startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows[1:])


def test_a_csv_export_with_no_leads_is_just_the_header(alice):
    response = alice.client.get("/v1/analytics/leads", {"format": "csv"})
    assert read_csv(b"".join(response.streaming_content)) == [
        ["id", "name", "email", "phone", "bot_id", "conversation_id", "captured_at", "message_id", "message"]
    ]


async def _collect(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_csv_streams_from_a_real_asgi_server_in_chunks():
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    conversation = chat(bot, utc(2026, 2, 1))
    Lead.objects.bulk_create(
        Lead(tenant=actor.tenant, bot=bot, conversation=conversation, name=f"Lead {n}", email=f"l{n}@example.com")
        for n in range(1203)
    )
    Lead.objects.filter(tenant=actor.tenant).update(captured_at=utc(2026, 2, 1, 1))
    params = {"start": "2026-02-01", "end": "2026-02-01", "format": "csv"}

    # Under ASGI the view hands Django an async iterator, which it streams chunk by chunk
    # (a sync iterator would be read whole into memory first).
    response = async_to_sync(AsyncClient().get)(
        "/v1/analytics/leads", params, headers={"Authorization": f"Bearer {actor.key}"}
    )
    assert response.status_code == 200
    assert response.is_async
    assert len(read_csv(async_to_sync(_collect)(response))) == 1 + 1203

    with uvicorn_server() as base_url:
        with httpx.stream(
            "GET",
            f"{base_url}/v1/analytics/leads",
            params=params,
            headers={"Authorization": f"Bearer {actor.key}"},
            timeout=30,
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/csv; charset=utf-8"
            assert "content-length" not in response.headers
            body = b"".join(response.iter_bytes())
    rows = read_csv(body)
    assert len(rows) == 1 + 1203
    assert rows[1][1] == "Lead 1202"
    assert rows[-1][1] == "Lead 0"
