from datetime import UTC, datetime, timedelta

from analytics.tests.conftest import TimedMessageFactory, chat, exchange
from bothero.testing.factories import BotFactory
from conversations.models import Message


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def unanswered(client, **params):
    response = client.get("/v1/analytics/unanswered", {"start": "2026-02-01", "end": "2026-02-28", **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_it_groups_fallback_questions_by_normalised_text_most_frequent_first(alice, alice_bot):
    day = utc(2026, 2, 10, 12)
    chat(alice_bot, day, question="Do you ship to Canada?", fallback=True)
    chat(alice_bot, day + timedelta(hours=1), question="  do you SHIP to   canada ", fallback=True)
    chat(alice_bot, day + timedelta(hours=2), question="Do you ship to Canada??", fallback=True)
    chat(alice_bot, day + timedelta(hours=3), question="What is your refund policy?", fallback=True)
    # Answered from knowledge: not unanswered, however often it is asked.
    chat(alice_bot, day, exchanges=5, question="What are your hours?")
    body = unanswered(alice.client)
    assert body["object"] == "list"
    assert body["has_more"] is False
    assert [(q["normalized"], q["count"]) for q in body["data"]] == [
        ("do you ship to canada", 3),
        ("what is your refund policy", 1),
    ]
    top = body["data"][0]
    assert top["object"] == "unanswered_question"
    assert top["question"] == "Do you ship to Canada??"  # the latest wording
    assert top["last_asked_at"] == "2026-02-10T14:00:00Z"
    assert top["conversation_id"].startswith("conv_")


def test_each_fallback_is_paired_with_the_question_just_before_it(alice, alice_bot):
    conversation = chat(alice_bot, utc(2026, 2, 10), question="Where are you based?")
    exchange(conversation, utc(2026, 2, 10, 0, 5), question="Can I pay by cheque?", fallback=True)
    # Two assistant messages in a row: the second still belongs to the last user question.
    TimedMessageFactory(
        conversation=conversation, role=Message.Role.ASSISTANT, is_fallback=True, content="…", at=utc(2026, 2, 10, 0, 6)
    )
    body = unanswered(alice.client)
    assert [(q["question"], q["count"]) for q in body["data"]] == [("Can I pay by cheque?", 2)]
    assert body["data"][0]["conversation_id"] == conversation.public_id


def test_it_counts_fallbacks_inside_the_range_only(alice, alice_bot):
    chat(alice_bot, utc(2026, 1, 31, 23), question="Too early?", fallback=True)
    chat(alice_bot, utc(2026, 2, 2), question="Just right?", fallback=True)
    assert [q["question"] for q in unanswered(alice.client)["data"]] == ["Just right?"]


def test_it_pages_with_a_cursor(alice, alice_bot):
    for number in range(5):
        for repeat in range(number + 1):
            chat(alice_bot, utc(2026, 2, 10, number, repeat), question=f"Question {number}", fallback=True)
    first = unanswered(alice.client, limit=2)
    assert [q["count"] for q in first["data"]] == [5, 4]
    assert first["has_more"] is True
    second = unanswered(alice.client, limit=2, cursor=first["next_cursor"])
    third = unanswered(alice.client, limit=2, cursor=second["next_cursor"])
    assert [q["count"] for q in second["data"] + third["data"]] == [3, 2, 1]
    assert third["has_more"] is False
    assert third["next_cursor"] is None


def test_it_filters_by_bot_and_keeps_tenants_apart(alice, alice_bot, charlie, charlie_bot):
    other = BotFactory(tenant=alice.tenant)
    chat(alice_bot, utc(2026, 2, 10), question="Alice's bot?", fallback=True)
    chat(other, utc(2026, 2, 10), question="Other bot?", fallback=True)
    chat(charlie_bot, utc(2026, 2, 10), question="Charlie's?", fallback=True)
    assert [q["question"] for q in unanswered(alice.client, bot_id=other.public_id)["data"]] == ["Other bot?"]
    assert [q["question"] for q in unanswered(charlie.client)["data"]] == ["Charlie's?"]
    response = charlie.client.get("/v1/analytics/unanswered", {"bot_id": alice_bot.public_id})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bot_not_found"
    assert response.json()["error"]["param"] == "bot_id"


def test_a_bad_cursor_is_a_400(alice):
    response = alice.client.get("/v1/analytics/unanswered", {"cursor": "non-sense"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
