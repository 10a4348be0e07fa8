import random
from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from analytics import selectors, services
from analytics.models import DailyRollup
from analytics.serializers import RangeQuerySerializer
from analytics.tests.conftest import chat, exchange, lead_at
from bothero.testing.factories import BotFactory


def days_ago(days: int) -> datetime:
    """Midnight UTC, `days` days before today."""
    return datetime.combine(timezone.now().astimezone(UTC).date() - timedelta(days=days), time(0), tzinfo=UTC)


def close_to(value, exact) -> bool:
    """Latency percentiles come from a histogram with 1 % relative accuracy."""
    return value is not None and abs(value - exact) <= 0.01 * exact + 1


def window(**params):
    query = RangeQuerySerializer(data=params)
    query.is_valid(raise_exception=True)
    return query.validated_data["window"]


@pytest.fixture
def two_periods(alice_bot, charlie_bot):
    """Ten days (current) after ten days (previous), with rows on both sides of every edge."""
    start = days_ago(30)
    c1 = chat(alice_bot, start + timedelta(hours=1), end_user_id="u1", latency_ms=100, feedback="up")
    exchange(c1, start + timedelta(hours=1, minutes=5), latency_ms=200)
    chat(alice_bot, start + timedelta(days=2), end_user_id="u1", fallback=True, latency_ms=1000, feedback="down")
    chat(alice_bot, start + timedelta(days=3), latency_ms=300)
    chat(alice_bot, start + timedelta(days=4), sources=[], latency_ms=400)
    lead_at(c1, start + timedelta(hours=2))
    # The previous period: [start - 10 days, start).
    chat(alice_bot, start - timedelta(days=9), end_user_id="u2", latency_ms=500)
    # Outside both periods, and another tenant's rows inside them.
    chat(alice_bot, start + timedelta(days=10, seconds=1))
    chat(alice_bot, start - timedelta(days=10, minutes=1))
    chat(charlie_bot, start + timedelta(days=1), exchanges=3)
    return start


def test_it_reports_a_period_and_the_one_before_it(alice, two_periods):
    start = two_periods
    response = alice.client.get(
        "/v1/analytics/overview",
        {"start": start.date().isoformat(), "end": (start + timedelta(days=9)).date().isoformat()},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "analytics.overview"
    assert body["bot_id"] is None
    assert body["timezone"] == "UTC"
    current, previous = body["current"], body["previous"]
    assert current["start"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert current["end"] == (start + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert previous["start"] == (start - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert previous["end"] == current["start"]
    assert {k: current[k] for k in current if k not in ("start", "end", "latency_median_ms", "latency_p95_ms")} == {
        "conversations": 4,
        "messages": 10,
        "user_messages": 5,
        "assistant_messages": 5,
        "unique_end_users": 3,  # u1 twice, and two conversations without an end user id
        "leads": 1,
        "avg_messages_per_conversation": 2.5,
        "answered_from_knowledge_rate": 0.6,  # 3 of 5: one fallback, one answer without sources
        "fallback_rate": 0.2,
        "feedback_up": 1,
        "feedback_down": 1,
        "prompt_tokens": 500,
        "completion_tokens": 100,
    }
    # Latencies 100, 200, 300, 400, 1000: nearest-rank median 300, p95 1000.
    assert close_to(current["latency_median_ms"], 300)
    assert close_to(current["latency_p95_ms"], 1000)
    assert previous["conversations"] == 1
    assert previous["messages"] == 2
    assert previous["unique_end_users"] == 1
    assert previous["leads"] == 0
    assert previous["answered_from_knowledge_rate"] == 1.0
    assert previous["fallback_rate"] == 0.0
    assert close_to(previous["latency_median_ms"], 500)


def test_an_empty_period_has_zeros_and_null_ratios(alice, two_periods):
    response = alice.client.get("/v1/analytics/overview", {"start": "2020-01-01", "end": "2020-01-31"})
    assert response.status_code == 200
    current = response.json()["current"]
    assert current["conversations"] == 0
    assert current["avg_messages_per_conversation"] is None
    assert current["answered_from_knowledge_rate"] is None
    assert current["latency_median_ms"] is None


def test_it_filters_by_bot(alice, alice_bot, two_periods):
    other = BotFactory(tenant=alice.tenant)
    chat(other, two_periods + timedelta(days=1), exchanges=2)
    params = {"start": two_periods.date().isoformat(), "end": (two_periods + timedelta(days=9)).date().isoformat()}
    everything = alice.client.get("/v1/analytics/overview", params).json()["current"]
    only_other = alice.client.get("/v1/analytics/overview", {**params, "bot_id": other.public_id}).json()
    assert everything["conversations"] == 5
    assert only_other["bot_id"] == other.public_id
    assert only_other["current"]["conversations"] == 1
    assert only_other["current"]["messages"] == 4


def test_it_defaults_to_the_last_30_days_including_today(alice, alice_bot):
    chat(alice_bot, timezone.now() - timedelta(minutes=5))
    chat(alice_bot, days_ago(29) + timedelta(minutes=1))
    chat(alice_bot, days_ago(30) + timedelta(hours=23))
    body = alice.client.get("/v1/analytics/overview").json()
    assert body["current"]["start"] == days_ago(29).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["current"]["conversations"] == 2
    assert body["previous"]["conversations"] == 1


def test_another_tenants_rows_are_never_counted(charlie, two_periods):
    body = charlie.client.get("/v1/analytics/overview", {"start": two_periods.date().isoformat()}).json()
    assert body["current"]["conversations"] == 1
    assert body["current"]["messages"] == 6


# --- rollups ---------------------------------------------------------------------------------


@pytest.fixture
def busy_tenant(alice, alice_bot):
    """45 days of varied traffic on two bots, rolled up through yesterday."""
    rng = random.Random(6)
    bots = [alice_bot, BotFactory(tenant=alice.tenant)]
    now = timezone.now()
    for _ in range(120):
        at = now - timedelta(seconds=rng.randint(0, 45 * 86400))
        conversation = chat(
            rng.choice(bots),
            at,
            exchanges=rng.randint(1, 3),
            end_user_id=rng.choice(["", "a", "b", "c", "d"]),
            fallback=rng.random() < 0.2,
            sources=rng.choice([None, []]),
            latency_ms=rng.choice([None, rng.randint(0, 5000)]),
            feedback=rng.choice([None, None, "up", "down"]),
            prompt_tokens=rng.randint(0, 500),
        )
        if rng.random() < 0.3:
            lead_at(conversation, at + timedelta(minutes=1))
    # The first activity is always 45 days ago (the random times stay within 45 days of now).
    chat(alice_bot, days_ago(45) + timedelta(hours=12))
    done = services.rollup_tenant(tenant=alice.tenant)
    assert done == [days_ago(day).date() for day in range(45, 0, -1)]
    return bots


WINDOWS = [
    {},
    {"start": "2000-01-01T00:00:00Z", "timezone": "UTC"},
    {"timezone": "America/New_York"},
    {"timezone": "Asia/Kolkata"},
]


@pytest.mark.parametrize("params", WINDOWS)
def test_rollups_plus_live_edges_equal_an_all_live_count(alice, busy_tenant, params):
    if params.get("start") == "2000-01-01T00:00:00Z":
        # A window with partial days at both ends, to exercise the live edges.
        now = timezone.now()
        params = {
            "start": (now - timedelta(days=40, hours=7)).isoformat(),
            "end": (now - timedelta(hours=30)).isoformat(),
        }
    tenant = alice.tenant
    for bot in (None, busy_tenant[1]):
        w = window(**params)
        combined = selectors.analytics_overview(tenant=tenant, bot=bot, window=w)
        live = selectors.analytics_overview(tenant=tenant, bot=bot, window=w, use_rollups=False)
        assert combined == live
        assert combined["current"]["conversations"] > 0
        for granularity in ("day", "week"):
            assert selectors.conversation_series(
                tenant=tenant, bot=bot, window=w, granularity=granularity
            ) == selectors.conversation_series(
                tenant=tenant, bot=bot, window=w, granularity=granularity, use_rollups=False
            )


def test_the_overview_reads_the_rollups_for_whole_past_days(alice, busy_tenant):
    w = window()
    before = selectors.analytics_overview(tenant=alice.tenant, window=w)
    # Tamper with one rolled-up day inside the window: a combined count must see it, a live one must not.
    row = DailyRollup.objects.filter(tenant=alice.tenant, bot=None, day__gt=w.start.date()).first()
    DailyRollup.objects.filter(pk=row.pk).update(conversations=row.conversations + 1000)
    after = selectors.analytics_overview(tenant=alice.tenant, window=w)
    live = selectors.analytics_overview(tenant=alice.tenant, window=w, use_rollups=False)
    assert after["current"]["conversations"] == before["current"]["conversations"] + 1000
    assert live["current"]["conversations"] == before["current"]["conversations"]


def test_today_is_counted_live_after_the_rollup(alice, alice_bot, busy_tenant):
    before = alice.client.get("/v1/analytics/overview").json()["current"]
    chat(alice_bot, timezone.now() - timedelta(seconds=10))
    after = alice.client.get("/v1/analytics/overview").json()["current"]
    assert after["conversations"] == before["conversations"] + 1
    assert after["messages"] == before["messages"] + 2
