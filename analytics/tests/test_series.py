from datetime import UTC, datetime

from analytics.tests.conftest import chat, lead_at


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def series(client, **params):
    response = client.get("/v1/analytics/conversations", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_new_york_days_around_the_spring_forward_split_at_local_midnight(alice, alice_bot):
    # 2026-03-08 in New York runs from 05:00Z to 04:00Z the next day (23 hours).
    chat(alice_bot, utc(2026, 3, 8, 4, 30))  # 23:30 EST on the 7th
    chat(alice_bot, utc(2026, 3, 8, 5, 0))  # 00:00 EST on the 8th
    chat(alice_bot, utc(2026, 3, 9, 3, 30), fallback=True)  # 23:30 EDT on the 8th
    conversation = chat(alice_bot, utc(2026, 3, 9, 4, 0))  # 00:00 EDT on the 9th
    lead_at(conversation, utc(2026, 3, 9, 4, 5))
    body = series(alice.client, start="2026-03-07", end="2026-03-09", timezone="America/New_York")
    assert body["granularity"] == "day"
    assert body["timezone"] == "America/New_York"
    assert body["start"] == "2026-03-07T05:00:00Z"
    assert body["end"] == "2026-03-10T04:00:00Z"
    points = body["data"]
    assert [p["label"] for p in points] == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert [(p["start"], p["end"]) for p in points] == [
        ("2026-03-07T05:00:00Z", "2026-03-08T05:00:00Z"),
        ("2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"),
        ("2026-03-09T04:00:00Z", "2026-03-10T04:00:00Z"),
    ]
    assert [p["conversations"] for p in points] == [1, 2, 1]
    assert [p["messages"] for p in points] == [2, 4, 2]
    assert [p["fallbacks"] for p in points] == [0, 1, 0]
    assert [p["leads"] for p in points] == [0, 0, 1]
    assert body["totals"] == {"conversations": 4, "messages": 8, "leads": 1, "fallbacks": 1}


def test_the_repeated_hour_of_the_fall_back_gets_two_buckets(alice, alice_bot):
    chat(alice_bot, utc(2026, 11, 1, 5, 30))  # 01:30 EDT
    chat(alice_bot, utc(2026, 11, 1, 6, 30))  # 01:30 EST, an hour later
    chat(alice_bot, utc(2026, 11, 1, 6, 45))  # 01:45 EST
    body = series(alice.client, start="2026-11-01", end="2026-11-01", timezone="America/New_York", granularity="hour")
    points = body["data"]
    assert len(points) == 25
    by_label = {p["label"]: p["conversations"] for p in points}
    assert by_label["2026-11-01T01:00:00-04:00"] == 1
    assert by_label["2026-11-01T01:00:00-05:00"] == 2
    assert sum(by_label.values()) == 3


def test_the_fall_back_day_is_25_hours_and_holds_its_late_evening(alice, alice_bot):
    chat(alice_bot, utc(2026, 11, 2, 4, 30))  # 23:30 EST on 1 November
    chat(alice_bot, utc(2026, 11, 2, 5, 0))  # 00:00 EST on 2 November
    body = series(alice.client, start="2026-11-01", end="2026-11-02", timezone="America/New_York")
    assert [(p["label"], p["start"], p["end"], p["conversations"]) for p in body["data"]] == [
        ("2026-11-01", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 1),
        ("2026-11-02", "2026-11-02T05:00:00Z", "2026-11-03T05:00:00Z", 1),
    ]


def test_the_same_rows_fall_on_different_days_in_utc(alice, alice_bot):
    chat(alice_bot, utc(2026, 3, 9, 3, 30))
    body = series(alice.client, start="2026-03-08", end="2026-03-09")
    assert [(p["label"], p["conversations"]) for p in body["data"]] == [("2026-03-08", 0), ("2026-03-09", 1)]


def test_empty_buckets_are_zero_filled(alice, alice_bot):
    chat(alice_bot, utc(2026, 2, 3, 12))
    body = series(alice.client, start="2026-02-01", end="2026-02-07")
    assert [p["conversations"] for p in body["data"]] == [0, 0, 1, 0, 0, 0, 0]
    assert all(p["messages"] == p["leads"] == p["fallbacks"] == 0 for i, p in enumerate(body["data"]) if i != 2)


def test_weekly_buckets_start_on_monday_in_the_requested_zone(alice, alice_bot):
    chat(alice_bot, utc(2026, 3, 9, 3, 0))  # Sunday 8 March 23:00 in New York, Monday in UTC
    body = series(alice.client, start="2026-03-02", end="2026-03-15", timezone="America/New_York", granularity="week")
    assert [(p["label"], p["conversations"]) for p in body["data"]] == [("2026-03-02", 1), ("2026-03-09", 0)]
    body = series(alice.client, start="2026-03-02", end="2026-03-15", timezone="UTC", granularity="week")
    assert [(p["label"], p["conversations"]) for p in body["data"]] == [("2026-03-02", 0), ("2026-03-09", 1)]


def test_a_window_starting_mid_bucket_counts_only_from_its_start(alice, alice_bot):
    chat(alice_bot, utc(2026, 2, 3, 8))
    chat(alice_bot, utc(2026, 2, 3, 12))
    body = series(alice.client, start="2026-02-03T10:00:00Z", end="2026-02-05T00:00:00Z")
    first = body["data"][0]
    assert (first["label"], first["start"], first["conversations"]) == ("2026-02-03", "2026-02-03T10:00:00Z", 1)
    assert len(body["data"]) == 2


def test_it_only_counts_the_given_bot_and_tenant(alice, alice_bot, charlie, charlie_bot):
    chat(alice_bot, utc(2026, 2, 3, 8))
    chat(charlie_bot, utc(2026, 2, 3, 8), exchanges=2)
    alices = series(alice.client, start="2026-02-03", end="2026-02-03", bot_id=alice_bot.public_id)
    assert alices["bot_id"] == alice_bot.public_id
    assert alices["totals"]["messages"] == 2
    charlies = series(charlie.client, start="2026-02-03", end="2026-02-03")
    assert charlies["totals"]["messages"] == 4
