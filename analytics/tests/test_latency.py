import random
from datetime import UTC, datetime, timedelta

from django.db import connection

from analytics import queries
from analytics.latency import RELATIVE_ACCURACY, histogram_merge, histogram_percentile
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


def test_merged_histograms_give_the_percentiles_of_the_union():
    monday = {10: 3, 20: 1}
    tuesday = {20: 2, 30: 4}
    merged = histogram_merge([*monday.items(), *tuesday.items()])
    assert merged == {10: 3, 20: 3, 30: 4}
    # Ten values: the 5th is in bucket 20, the 10th in bucket 30.
    assert histogram_percentile(merged, 0.5) == histogram_percentile({20: 1}, 0.5)
    assert histogram_percentile(merged, 1.0) == histogram_percentile({30: 1}, 0.5)
    assert histogram_percentile({}, 0.5) is None
    assert histogram_percentile({-1: 5}, 0.95) == 0
