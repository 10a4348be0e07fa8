import random
from datetime import UTC, datetime, timedelta

from django.db import connection

from analytics import queries
from analytics.latency import (
    GAMMA,
    MAX_LATENCY_MS,
    RELATIVE_ACCURACY,
    ZERO_BUCKET,
    empty_histogram,
    histogram_add,
    histogram_from_bytes,
    histogram_percentile,
    histogram_to_bytes,
)
from analytics.tests.conftest import chat, exchange


def test_histogram_percentiles_stay_within_one_percent_of_the_exact_ones(alice, alice_bot):
    rng = random.Random(42)
    start = datetime(2026, 2, 1, tzinfo=UTC)
    conversation = chat(alice_bot, start, latency_ms=0)
    for n in range(400):
        exchange(conversation, start + timedelta(minutes=n), latency_ms=int(rng.lognormvariate(6.5, 1.0)))
    interval = [(start, start + timedelta(days=1))]
    counts = queries.live_counts(
        tenant_id=alice.tenant.pk, bot_id=None, intervals=interval, group=queries.GroupBy.bot()
    )[alice_bot.pk]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), "
            "percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            "FROM conversations_message WHERE tenant_id = %s AND role = 'assistant'",
            [alice.tenant.pk],
        )
        exact_median, exact_p95 = cursor.fetchone()
    for quantile, exact in ((0.5, exact_median), (0.95, exact_p95)):
        estimate = histogram_percentile(counts.latency_histogram, quantile)
        assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact + 1, (quantile, estimate, exact)


def test_histograms_add_up_and_give_the_percentiles_of_the_union():
    monday, tuesday = empty_histogram(), empty_histogram()
    histogram_add(monday, 10, 3)
    histogram_add(monday, 20, 1)
    histogram_add(tuesday, 20, 2)
    histogram_add(tuesday, 30, 4)
    merged = histogram_from_bytes(histogram_to_bytes(monday)) + histogram_from_bytes(histogram_to_bytes(tuesday))
    # Ten values: the 5th is in bucket 20, the 10th in bucket 30.
    assert histogram_percentile(merged, 0.5) == round(2 * GAMMA**20 / (GAMMA + 1))
    assert histogram_percentile(merged, 1.0) == round(2 * GAMMA**30 / (GAMMA + 1))
    assert histogram_percentile(empty_histogram(), 0.5) is None
    zeros = empty_histogram()
    histogram_add(zeros, ZERO_BUCKET, 5)
    assert histogram_percentile(zeros, 0.95) == 0


def test_the_largest_possible_latency_has_a_bucket(alice, alice_bot):
    conversation = chat(alice_bot, datetime(2026, 2, 1, tzinfo=UTC), latency_ms=MAX_LATENCY_MS)
    counts = queries.live_counts(
        tenant_id=alice.tenant.pk,
        bot_id=None,
        intervals=[(conversation.created_at, conversation.created_at + timedelta(hours=1))],
        group=queries.GroupBy.bot(),
    )[alice_bot.pk]
    assert close_enough(histogram_percentile(counts.latency_histogram, 0.5), MAX_LATENCY_MS)


def close_enough(estimate, exact) -> bool:
    return abs(estimate - exact) <= RELATIVE_ACCURACY * exact + 1
