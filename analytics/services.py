"""Writes for analytics: the daily rollup (an idempotent replace of one tenant's UTC day) and catching up."""

from dataclasses import asdict
from datetime import UTC, date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from analytics import queries
from analytics.models import DailyRollup, RollupState
from analytics.timewindows import utc_day_start
from bots.models import Bot
from conversations.models import Conversation, Lead, Message


def rollup_day(*, tenant, day: date, advance_watermark: bool = False) -> list[DailyRollup]:
    """Recompute one tenant's rollup rows for one UTC day, replacing what was there (safe to repeat).

    Bots without activity that day get no row. The heavy read happens before
    the short write transaction; the write swaps the day's rows atomically.
    With `advance_watermark` the tenant's `rolled_up_through` moves up to `day`
    in the same transaction (never back); the caller guarantees every earlier
    day is rolled up.
    """
    start = utc_day_start(day)
    by_bot = queries.live_counts(
        tenant_id=tenant.pk, bot_id=None, intervals=[(start, start + timedelta(days=1))], group=queries.GroupBy.bot()
    )
    with transaction.atomic():
        # A bot deleted since the read takes its messages (and so its counts) with it.
        live_bots = set(Bot.objects.filter(tenant=tenant, pk__in=list(by_bot)).values_list("pk", flat=True))
        rows = []
        for bot_id, counts in by_bot.items():
            if bot_id not in live_bots:
                continue
            figures = asdict(counts)
            histogram = figures.pop("latency_histogram")
            rows.append(
                DailyRollup(
                    tenant=tenant,
                    bot_id=bot_id,
                    day=day,
                    latency_histogram={str(bucket): number for bucket, number in sorted(histogram.items())},
                    **figures,
                )
            )
        DailyRollup.objects.filter(tenant=tenant, day=day).delete()
        DailyRollup.objects.bulk_create(rows)
        if advance_watermark:
            RollupState.objects.get_or_create(tenant=tenant)
            RollupState.objects.filter(tenant=tenant).update(
                rolled_up_through=Greatest(Coalesce(F("rolled_up_through"), day), day)
            )
    return rows


def _earliest_activity_day(tenant) -> date | None:
    firsts = [
        Message.objects.filter(tenant=tenant).aggregate(first=Min("created_at"))["first"],
        Conversation.objects.filter(tenant=tenant).aggregate(first=Min("created_at"))["first"],
        Lead.objects.filter(tenant=tenant).aggregate(first=Min("captured_at"))["first"],
    ]
    firsts = [moment for moment in firsts if moment is not None]
    return min(firsts).astimezone(UTC).date() if firsts else None


def rollup_tenant(*, tenant, today: date | None = None) -> list[date]:
    """Roll up every UTC day before `today` that is not rolled up yet, and re-roll the recent ones.

    Days go in order and the tenant's watermark (`RollupState.rolled_up_through`)
    advances after each one, so an interrupted run resumes where it stopped.
    The last `ANALYTICS_ROLLUP_LOOKBACK_DAYS` days are recomputed whenever a new
    day is rolled up, to pick up feedback and deletions that came late. At most
    `ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN` new days are done per call. Returns the days done.
    """
    today = today or timezone.now().astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    state, _ = RollupState.objects.get_or_create(tenant=tenant)
    through = state.rolled_up_through
    if through is not None and through >= yesterday:
        return []
    if through is None:
        first = _earliest_activity_day(tenant)
        if first is None or first > yesterday:
            # Nothing happened before today: every past day is (trivially) rolled up.
            RollupState.objects.filter(pk=state.pk).update(rolled_up_through=yesterday)
            return []
    else:
        lookback = settings.ANALYTICS_ROLLUP_LOOKBACK_DAYS
        first = min(through + timedelta(days=1), yesterday - timedelta(days=lookback - 1))
    done, new_days = [], 0
    day = first
    # The cap counts new days only: re-rolling the lookback window must not stall a backfill.
    while day <= yesterday and new_days < settings.ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN:
        rollup_day(tenant=tenant, day=day, advance_watermark=True)
        done.append(day)
        if through is None or day > through:
            new_days += 1
        day += timedelta(days=1)
    return done
