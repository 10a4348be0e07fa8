"""GET /v1/conversations/export: every message with its sources and feedback, as JSON lines or CSV, streamed."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from bothero.testing.factories import BotFactory, ConversationFactory, MessageFactory
from bothero.testing.processes import uvicorn_server
from conftest import make_actor
from conversations import exports
from conversations.models import Conversation, Message

from .conftest import streamed_body


def export(client, **query):
    response = client.get("/v1/conversations/export", query)
    assert response.status_code == 200, response.content
    return response, streamed_body(response).decode()


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_each_message_comes_with_its_sources_feedback_and_conversation(alice, faq_bot):
    first = alice.client.post(
        "/v1/chat/completions",
        {"bot_id": faq_bot.public_id, "message": "When are you open on Saturdays?", "metadata": {"user_id": "c-7"}},
        format="json",
    ).json()
    alice.client.post(
        f"/v1/conversations/{first['conversation_id']}/messages/{first['id']}/feedback",
        {"rating": "up", "comment": "Clear"},
        format="json",
    )
    second = alice.client.post(
        "/v1/chat/completions", {"bot_id": faq_bot.public_id, "message": "Do you ship for free?"}, format="json"
    ).json()
    response, text = export(alice.client)
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')
    lines = jsonl(text)
    # Conversations oldest first, each one's messages oldest first.
    assert [(line["conversation_id"], line["role"]) for line in lines] == [
        (first["conversation_id"], "user"),
        (first["conversation_id"], "assistant"),
        (second["conversation_id"], "user"),
        (second["conversation_id"], "assistant"),
    ]
    answer = lines[1]
    assert answer["id"] == first["id"]
    assert answer["object"] == "message"
    assert answer["content"] == first["content"]
    assert answer["sources"] == first["sources"] != []
    assert answer["feedback"] == {"rating": "up", "comment": "Clear"}
    assert answer["usage"] == first["usage"]
    assert answer["conversation"]["id"] == first["conversation_id"]
    assert answer["conversation"]["end_user_id"] == "c-7"
    assert answer["conversation"]["metadata"] == {"user_id": "c-7"}
    assert lines[0]["content"] == "When are you open on Saturdays?"
    # The same representation as the messages endpoint.
    listed = alice.client.get(f"/v1/conversations/{first['conversation_id']}/messages").json()["data"]
    assert [{k: v for k, v in line.items() if k != "conversation"} for line in lines[:2]] == listed


def test_the_csv_has_one_row_per_message_and_is_safe_in_a_spreadsheet(alice, alice_bot):
    conversation = ConversationFactory(bot=alice_bot, end_user_id="u-1")
    MessageFactory(conversation=conversation, role="user", content='=HYPERLINK("http://evil")')
    MessageFactory(
        conversation=conversation,
        role="assistant",
        content='Line one,\nline "two"',
        sources=[{"document_id": "doc_1", "title": "FAQ", "chunk_id": "chk_1", "score": 0.5, "snippet": "é"}],
        feedback_rating="down",
        feedback_comment="Wrong",
    )
    response, text = export(alice.client, format="csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert list(rows[0]) == exports.CSV_COLUMNS
    assert [row["role"] for row in rows] == ["user", "assistant"]
    assert rows[0]["content"] == '\'=HYPERLINK("http://evil")'
    assert rows[1]["content"] == 'Line one,\nline "two"'
    assert rows[1]["feedback_rating"] == "down"
    assert rows[1]["feedback_comment"] == "Wrong"
    assert rows[1]["source_document_ids"] == "doc_1"
    assert json.loads(rows[1]["sources"])[0]["snippet"] == "é"
    assert rows[1]["conversation_id"] == conversation.public_id
    assert rows[1]["end_user_id"] == "u-1"


def test_it_takes_the_lists_filters(alice, alice_bot):
    other_bot = BotFactory(tenant=alice.tenant)
    old = ConversationFactory(bot=alice_bot)
    Conversation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    with_lead = ConversationFactory(bot=alice_bot, has_lead=True)
    elsewhere = ConversationFactory(bot=other_bot)
    for conversation in (old, with_lead, elsewhere):
        MessageFactory(conversation=conversation)

    def exported(**query):
        return [line["conversation_id"] for line in jsonl(export(alice.client, **query)[1])]

    assert exported(bot_id=alice_bot.public_id) == [old.public_id, with_lead.public_id]
    assert exported(has_lead="true") == [with_lead.public_id]
    after = (timezone.now() - timedelta(days=1)).isoformat()
    assert exported(created_after=after) == [with_lead.public_id, elsewhere.public_id]
    assert exported(created_before=after) == [old.public_id]


def test_another_tenants_conversations_are_never_exported(alice, charlie, alice_bot):
    MessageFactory(conversation=ConversationFactory(bot=alice_bot))
    assert export(charlie.client)[1] == ""
    # Alice's bot is no bot of Charlie's: 404, as for every bot_id filter.
    response = charlie.client.get("/v1/conversations/export", {"bot_id": alice_bot.public_id})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bot_not_found"
    assert len(jsonl(export(alice.client)[1])) == 1


@pytest.mark.parametrize(
    ("query", "code", "param"),
    [
        ({"format": "xml"}, "invalid_format", "format"),
        ({"created_after": "yesterday"}, "invalid_request", "created_after"),
        ({"has_lead": "maybe"}, "invalid_request", "has_lead"),
    ],
)
def test_bad_parameters_are_a_400_in_json(alice, query, code, param):
    response = alice.client.get("/v1/conversations/export", query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["param"] == param
    if code != "invalid_request":
        assert error["code"] == code


def test_every_message_is_exported_once_across_chunk_boundaries(alice, alice_bot, monkeypatch):
    monkeypatch.setattr(exports, "CONVERSATION_CHUNK", 3)
    monkeypatch.setattr(exports, "MESSAGE_CHUNK", 4)
    expected = []
    for size in (0, 1, 9, 4, 0, 2, 3, 0, 5):  # a conversation longer than a message chunk, empty ones between
        conversation = ConversationFactory(bot=alice_bot)
        expected += [MessageFactory(conversation=conversation).public_id for _ in range(size)]
    assert [line["id"] for line in jsonl(export(alice.client)[1])] == expected


# --- 100k messages from a real server, in constant memory --------------------------------------------------


def _columns(model, *, replaced: dict[str, str]) -> tuple[str, str]:
    """(column list, select list) copying every column of a template row but the id and those in `replaced`."""
    names = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    return ", ".join(names), ", ".join(replaced.get(name, f"t.{name}") for name in names)


def _insert_messages(bot, *, conversations: int, per_conversation: int) -> None:
    """Copy a template conversation and message in SQL (factories would take minutes for 100k rows)."""
    sources = [
        {"document_id": "doc_bulk", "title": "Bulk FAQ", "chunk_id": "chk_bulk", "score": 0.7, "snippet": "x" * 150}
    ]
    template = MessageFactory(
        conversation=ConversationFactory(bot=bot, message_count=per_conversation),
        content="A sentence of the answer. " * 12,
        sources=sources,
        model="extractive",
        prompt_tokens=100,
        completion_tokens=20,
    )
    conversation_table, message_table = Conversation._meta.db_table, Message._meta.db_table
    with connection.cursor() as cursor:
        columns, values = _columns(Conversation, replaced={"public_id": "'conv_bulk' || n"})
        cursor.execute(
            f"""INSERT INTO {conversation_table} ({columns}) SELECT {values}
                FROM {conversation_table} t CROSS JOIN generate_series(1, %s) n WHERE t.id = %s""",
            [conversations - 1, template.conversation_id],
        )
        columns, values = _columns(
            Message,
            replaced={
                "public_id": "'msg_bulk' || c.id || '_' || n",
                "conversation_id": "c.id",
                "role": "CASE WHEN n %% 2 = 0 THEN 'assistant' ELSE 'user' END",
            },
        )
        cursor.execute(
            f"""INSERT INTO {message_table} ({columns}) SELECT {values}
                FROM {message_table} t, {conversation_table} c CROSS JOIN generate_series(1, %s) n
                WHERE t.id = %s AND c.bot_id = %s AND (c.id <> t.conversation_id OR n > 1)""",
            [per_conversation, template.pk, bot.pk],
        )


def _peak_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_a_100k_message_export_streams_from_uvicorn_without_loading_it_all(transactional_db):
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    empty_bot = BotFactory(tenant=actor.tenant)
    _insert_messages(bot, conversations=1000, per_conversation=100)
    headers = {"Authorization": f"Bearer {actor.key}"}
    with uvicorn_server() as base:
        # Warm up (imports, connections, a small export) before taking the baseline.
        MessageFactory(conversation=ConversationFactory(bot=empty_bot))
        warm = httpx.get(f"{base}/v1/conversations/export", params={"bot_id": empty_bot.public_id}, headers=headers)
        assert warm.status_code == 200
        assert warm.text.count("\n") == 1
        baseline = _peak_rss_bytes(base.pid)
        size, lines, chunks = 0, 0, 0
        with httpx.stream(
            "GET", f"{base}/v1/conversations/export", params={"bot_id": bot.public_id}, headers=headers, timeout=120
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"
            for chunk in response.iter_bytes():
                size += len(chunk)
                lines += chunk.count(b"\n")
                chunks += 1
        growth = _peak_rss_bytes(base.pid) - baseline
    assert lines == 100_000
    assert size > 60_000_000
    # Buffered whole (a sync iterator under ASGI), the server's peak memory grew by more than the export's size
    # (110 MB for 103 MB when tried); streamed, by about 12 MB: some chunks in flight and allocator slack.
    assert growth < size / 5, (growth, size)
    assert chunks > 50  # it arrived in pieces, not as one buffered body
