"""Writes for analytics: the daily rollup (an idempotent replace of one tenant's UTC day) and catching up."""

from datetime import UTC, date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from analytics import queries
from analytics.latency import histogram_to_bytes
from analytics.models import DailyRollup, RollupState
from analytics.sketches import day_sketch
from analytics.timewindows import utc_day_start
from bots.models import Bot
from conversations.models import Conversation, Lead, Message


def _rollup_row(
    *, tenant, bot_id: int | None, day: date, counts: queries.Counts, end_user_ids, bot_ids=()
) -> DailyRollup:
    registers, hashes, named = day_sketch(end_user_ids)
    return DailyRollup(
        tenant=tenant,
        bot_id=bot_id,
        day=day,
        latency_histogram=histogram_to_bytes(counts.latency_histogram),
        named_end_users=named,
        end_user_registers=registers,
        end_user_hashes=hashes,
        bot_ids=sorted(bot_ids),
        **counts.figures(),
    )


def rollup_day(*, tenant, day: date, advance_watermark: bool = False) -> list[DailyRollup]:
    """Recompute one tenant's rollup rows for one UTC day, replacing what was there (safe to repeat).

    Each bot with activity that day gets a row, and the tenant a row for all its
    bots together (bot null); a day without activity has no rows. The reads
    happen before the short write transaction, which swaps the day's rows
    atomically. With `advance_watermark` the tenant's `rolled_up_through` moves
    up to `day` in the same transaction (never back); the caller guarantees
    every earlier day is rolled up.
    """
    start = utc_day_start(day)
    interval = [(start, start + timedelta(days=1))]
    by_bot = queries.live_counts(tenant_id=tenant.pk, bot_id=None, intervals=interval, group=queries.GroupBy.bot())
    users_by_bot = queries.named_end_users(
        tenant_id=tenant.pk, bot_id=None, intervals=interval, group=queries.GroupBy.bot()
    )
    with transaction.atomic():
        # A bot deleted since the read takes its messages (and so its counts) with it.
        live_bots = set(Bot.objects.filter(tenant=tenant, pk__in=list(by_bot)).values_list("pk", flat=True))
        per_bot = {bot_id: counts for bot_id, counts in by_bot.items() if bot_id in live_bots}
        whole_tenant, tenant_users = queries.Counts(), set()
        rows = []
        for bot_id, counts in per_bot.items():
            whole_tenant.add(counts)
            users = users_by_bot.get(bot_id, [])
            tenant_users.update(users)
            rows.append(_rollup_row(tenant=tenant, bot_id=bot_id, day=day, counts=counts, end_user_ids=users))
        if per_bot:
            rows.append(
                _rollup_row(
                    tenant=tenant, bot_id=None, day=day, counts=whole_tenant, end_user_ids=tenant_users, bot_ids=per_bot
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


def _days_with_deleted_bots(tenant) -> list[date]:
    """Days whose tenant-wide row still counts a bot that has since been deleted (its own rows went with it)."""
    bots = set(Bot.objects.filter(tenant=tenant).values_list("pk", flat=True))
    rows = DailyRollup.objects.filter(tenant=tenant, bot__isnull=True).values_list("day", "bot_ids")
    return sorted(day for day, bot_ids in rows if not bots.issuperset(bot_ids))


def rollup_tenant(*, tenant, today: date | None = None) -> list[date]:
    """Roll up every UTC day before `today` that is not rolled up yet, and re-roll the recent ones.

    Days go in order and the tenant's watermark (`RollupState.rolled_up_through`)
    advances after each one, so an interrupted run resumes where it stopped.
    The last `ANALYTICS_ROLLUP_LOOKBACK_DAYS` days are recomputed whenever a new
    day is rolled up, to pick up feedback and deletions that came late. At most
    `ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN` new days are done per call. Days whose
    tenant-wide row still counts a deleted bot are re-rolled first. Returns the days done.
    """
    today = today or timezone.now().astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    repaired = _days_with_deleted_bots(tenant)[: settings.ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN]
    for day in repaired:
        rollup_day(tenant=tenant, day=day)
    state, _ = RollupState.objects.get_or_create(tenant=tenant)
    through = state.rolled_up_through
    if through is not None and through >= yesterday:
        return repaired
    if through is None:
        first = _earliest_activity_day(tenant)
        if first is None or first > yesterday:
            # Nothing happened before today: every past day is (trivially) rolled up.
            RollupState.objects.filter(pk=state.pk).update(rolled_up_through=yesterday)
            return repaired
    else:
        lookback = settings.ANALYTICS_ROLLUP_LOOKBACK_DAYS
        first = min(through + timedelta(days=1), yesterday - timedelta(days=lookback - 1))
    done, new_days = list(repaired), 0
    day = first
    # The cap counts new days only: re-rolling the lookback window must not stall a backfill.
    while day <= yesterday and new_days < settings.ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN:
        rollup_day(tenant=tenant, day=day, advance_watermark=True)
        done.append(day)
        if through is None or day > through:
            new_days += 1
        day += timedelta(days=1)
    return done
