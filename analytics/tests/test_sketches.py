from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from analytics import selectors, services
from analytics.sketches import EXACT_LIMIT, EXACT_PER_DAY, EndUserSketch
from analytics.tests.conftest import chat
from analytics.timewindows import Window
from bothero.testing.factories import BotFactory


def test_small_sets_are_counted_exactly_across_days():
    monday = EndUserSketch().add(["ann", "bob", "cid"]).to_bytes()
    tuesday = EndUserSketch().add(["bob", "dee"]).to_bytes()
    assert EndUserSketch().merge(monday).merge(tuesday).add(["eve", "ann"]).count() == 5


def test_large_sets_are_estimated_within_a_few_percent():
    days = [
        EndUserSketch().add(f"user-{n}" for n in range(day * 900, day * 900 + 1500)).to_bytes() for day in range(40)
    ]
    merged = EndUserSketch()
    for stored in days:
        merged.merge(stored)
    true_count = 39 * 900 + 1500  # consecutive days overlap by 600 users
    assert abs(merged.count() - true_count) <= 0.05 * true_count


def test_a_busy_day_keeps_only_its_registers():
    busy = EndUserSketch().add(f"u{n}" for n in range(EXACT_PER_DAY + 1)).to_bytes()
    assert len(busy) == 1 + 4096
    estimate = EndUserSketch().merge(busy).count()
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
