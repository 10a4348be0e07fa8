from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection

from analytics import selectors, services
from analytics.sketches import EXACT_LIMIT, EXACT_PER_DAY, EndUserSketch, day_sketch
from analytics.tests.conftest import chat
from analytics.timewindows import Window
from bothero.testing.factories import BotFactory
from conversations.models import Conversation


def merged(*days) -> EndUserSketch:
    sketch = EndUserSketch()
    for registers, hashes, _ in days:
        sketch.merge(registers, hashes)
    return sketch


def test_small_sets_are_counted_exactly_across_days():
    monday, tuesday, quiet = day_sketch(["ann", "bob", "cid"]), day_sketch(["bob", "dee", "bob"]), day_sketch([])
    assert (monday[2], tuesday[2], quiet) == (3, 2, (b"", b"", 0))
    assert merged(monday, tuesday, quiet).add(["eve", "ann"]).count() == 5


def test_large_sets_are_estimated_within_a_few_percent():
    days = [day_sketch(f"user-{n}" for n in range(day * 900, day * 900 + 1500)) for day in range(40)]
    true_count = 39 * 900 + 1500  # consecutive days overlap by 600 users
    assert abs(merged(*days).count() - true_count) <= 0.05 * true_count


def test_a_busy_day_keeps_only_its_registers():
    registers, hashes, named = day_sketch(f"u{n}" for n in range(EXACT_PER_DAY + 1))
    assert (len(registers), hashes, named) == (4096, None, EXACT_PER_DAY + 1)
    estimate = merged((registers, hashes, named)).count()
    assert abs(estimate - (EXACT_PER_DAY + 1)) <= 0.05 * EXACT_PER_DAY


def test_the_exact_union_stops_at_the_limit():
    sketch = EndUserSketch().add(f"u{n}" for n in range(EXACT_LIMIT))
    assert sketch.count() == EXACT_LIMIT
    sketch.add(["one more"])
    assert abs(sketch.count() - (EXACT_LIMIT + 1)) <= 0.05 * EXACT_LIMIT


def test_the_overview_counts_a_user_once_across_days_and_bots(alice, alice_bot):
    other = BotFactory(tenant=alice.tenant)
    start = datetime(2026, 2, 1, tzinfo=UTC)
    for day in range(5):
        chat(alice_bot, start + timedelta(days=day, hours=1), end_user_id="regular")
        chat(other, start + timedelta(days=day, hours=2), end_user_id="regular")
        chat(alice_bot, start + timedelta(days=day, hours=3), end_user_id=f"visitor-{day}")
        chat(other, start + timedelta(days=day, hours=4))  # anonymous: a user of its own
    services.rollup_tenant(tenant=alice.tenant, today=date(2026, 3, 1))
    window = Window(start=start, end=start + timedelta(days=5), tz=ZoneInfo("UTC"))
    assert selectors.analytics_overview(tenant=alice.tenant, window=window)["current"]["unique_end_users"] == 1 + 5 + 5
    assert (
        selectors.analytics_overview(tenant=alice.tenant, bot=other, window=window)["current"]["unique_end_users"] == 6
    )


def test_a_period_with_more_users_than_the_exact_limit_is_estimated(alice, alice_bot):
    start = datetime(2026, 2, 1, tzinfo=UTC)
    total = EXACT_LIMIT + 600
    Conversation.objects.bulk_create(
        Conversation(tenant=alice.tenant, bot=alice_bot, end_user_id=f"user-{n}") for n in range(total)
    )
    with connection.cursor() as cursor:
        # Spread them over three days.
        cursor.execute(
            f"UPDATE {Conversation._meta.db_table} SET created_at = %s + (id %% 3) * interval '1 day' "
            "WHERE tenant_id = %s",
            [start + timedelta(hours=1), alice.tenant.pk],
        )
    services.rollup_tenant(tenant=alice.tenant, today=date(2026, 3, 1))
    window = Window(start=start, end=start + timedelta(days=3), tz=ZoneInfo("UTC"))
    exact = selectors.analytics_overview(tenant=alice.tenant, window=window, use_rollups=False)
    estimate = selectors.analytics_overview(tenant=alice.tenant, window=window)
    assert (
        exact["current"]["unique_end_users"]
        == Conversation.objects.filter(tenant=alice.tenant, created_at__gte=start, created_at__lt=window.end).count()
    )
    assert exact["current"]["unique_end_users"] > EXACT_LIMIT
    assert abs(estimate["current"]["unique_end_users"] - exact["current"]["unique_end_users"]) <= 0.05 * total
    assert estimate["current"]["conversations"] == exact["current"]["conversations"]
