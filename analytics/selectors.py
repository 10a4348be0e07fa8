"""Reads for analytics: overview, time series, leads and unanswered questions.

Figures for a range combine two sources: the daily rollups for the whole UTC
days that are rolled up and lie inside one bucket, and live indexed queries
for everything else (partial days at the edges, today, days not rolled up yet,
and every bucket whose boundaries are not UTC midnights, e.g. other time zones
or hourly buckets). Both sources count with the same SQL, so the sum equals a
fully live count (see `bucketed_counts(use_rollups=False)`).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from django.db.models import BigIntegerField, Count, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Tenant, UsageCounter
from accounts.services import current_period_start
from analytics import queries
from analytics.latency import histogram_percentile
from analytics.models import RollupState, TenantUsage
from analytics.sketches import EndUserSketch
from analytics.timewindows import Window, bucket_label, bucket_thresholds, utc_day_start, whole_utc_days
from bots.models import Bot
from conversations.models import Conversation, Lead
from knowledge.models import Document

# --- combining rollups and live queries -----------------------------------------------


def _rolled_up_through(tenant) -> date | None:
    """The last UTC day whose rollup can be trusted: rolled up, and before today."""
    through = RollupState.objects.filter(tenant=tenant).values_list("rolled_up_through", flat=True).first()
    if through is None:
        return None
    return min(through, timezone.now().astimezone(UTC).date() - timedelta(days=1))


def split_rolled_up(
    thresholds, through: date | None
) -> tuple[list[tuple[date, date]], list[tuple[datetime, datetime]]]:
    """Split [thresholds[0], thresholds[-1]) into runs of rolled-up whole UTC days and live intervals.

    A UTC day is taken from the rollup only when it lies wholly inside one
    bucket and is on or before `through`; the rest is counted live.
    """
    runs: list[list[date]] = []
    if through is not None:
        limit = through + timedelta(days=1)
        for low, high in pairwise(thresholds):
            first, end = whole_utc_days(low, high)
            end = min(end, limit)
            if first >= end:
                continue
            if runs and runs[-1][1] == first:
                runs[-1][1] = end
            else:
                runs.append([first, end])
    live, cursor = [], thresholds[0]
    for first, end in runs:
        if cursor < utc_day_start(first):
            live.append((cursor, utc_day_start(first)))
        cursor = utc_day_start(end)
    if cursor < thresholds[-1]:
        live.append((cursor, thresholds[-1]))
    return [(first, end) for first, end in runs], live


@dataclass
class Bucket:
    counts: queries.Counts
    # Distinct named end users, when asked for: rolled-up days merged with the live rows.
    end_users: EndUserSketch | None = None


def bucketed_counts(
    *, tenant, bot=None, thresholds, with_latency: bool = True, with_end_users: bool = False, use_rollups: bool = True
) -> list[Bucket]:
    """Figures for each bucket [thresholds[i], thresholds[i + 1]), rollups and live rows combined."""
    bot_id = bot.pk if bot is not None else None
    through = _rolled_up_through(tenant) if use_rollups else None
    day_runs, live_intervals = split_rolled_up(thresholds, through)
    by_time = queries.GroupBy.buckets(thresholds)
    rolled_up = queries.rollup_counts(
        tenant_id=tenant.pk,
        bot_id=bot_id,
        day_runs=day_runs,
        thresholds=thresholds,
        with_latency=with_latency,
        with_end_users=with_end_users,
    )
    live = queries.live_counts(
        tenant_id=tenant.pk, bot_id=bot_id, intervals=live_intervals, group=by_time, with_latency=with_latency
    )
    buckets = [
        Bucket(counts=queries.Counts(), end_users=EndUserSketch() if with_end_users else None) for _ in thresholds[1:]
    ]

    def bucket(key: int) -> Bucket | None:
        # width_bucket numbers buckets from 1; 0 and len(thresholds) are outside the range.
        return buckets[key - 1] if 1 <= key < len(thresholds) else None

    for source in (rolled_up.counts, live):
        for key, counts in source.items():
            if target := bucket(key):
                target.counts.add(counts)
    if with_end_users:
        for key, stored_days in rolled_up.end_users.items():
            if target := bucket(key):
                for registers, hashes in stored_days:
                    target.end_users.merge(registers, hashes)
        live_users = queries.named_end_users(
            tenant_id=tenant.pk, bot_id=bot_id, intervals=live_intervals, group=by_time
        )
        for key, end_user_ids in live_users.items():
            if target := bucket(key):
                target.end_users.add(end_user_ids)
    return buckets


# --- overview ----------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int, digits: int) -> float | None:
    return round(numerator / denominator, digits) if denominator else None


def _figures(window_start, window_end, counts: queries.Counts, unique_users: int) -> dict:
    return {
        "start": window_start,
        "end": window_end,
        "conversations": counts.conversations,
        "messages": counts.messages,
        "user_messages": counts.user_messages,
        "assistant_messages": counts.assistant_messages,
        "unique_end_users": unique_users,
        "leads": counts.leads,
        "avg_messages_per_conversation": _ratio(counts.messages, counts.conversations, 2),
        "answered_from_knowledge_rate": _ratio(counts.answered_from_knowledge, counts.assistant_messages, 4),
        "fallback_rate": _ratio(counts.fallbacks, counts.assistant_messages, 4),
        "feedback_up": counts.feedback_up,
        "feedback_down": counts.feedback_down,
        "prompt_tokens": counts.prompt_tokens,
        "completion_tokens": counts.completion_tokens,
        "latency_median_ms": histogram_percentile(counts.latency_histogram, 0.5),
        "latency_p95_ms": histogram_percentile(counts.latency_histogram, 0.95),
    }


def analytics_overview(*, tenant, bot=None, window: Window, use_rollups: bool = True) -> dict:
    """The overview of `window` and of the period of equal length before it.

    Unique end users: named end users (distinct `end_user_id`) plus one per
    conversation without an id. With rollups the named ones come from the daily
    sketches (exact while small, a HyperLogLog estimate above, see
    analytics.sketches); `use_rollups=False` counts every row exactly.
    """
    previous = window.previous
    thresholds = [previous.start, window.start, window.end]
    before, current = bucketed_counts(
        tenant=tenant, bot=bot, thresholds=thresholds, with_end_users=use_rollups, use_rollups=use_rollups
    )
    if use_rollups:
        users = {
            number: part.end_users.count() + part.counts.anonymous_conversations
            for number, part in ((1, before), (2, current))
        }
    else:
        users = queries.unique_end_users(tenant_id=tenant.pk, bot_id=bot.pk if bot else None, thresholds=thresholds)
    return {
        "object": "analytics.overview",
        "bot_id": bot.public_id if bot else None,
        "timezone": window.tz.key,
        "current": _figures(window.start, window.end, current.counts, users.get(2, 0)),
        "previous": _figures(previous.start, previous.end, before.counts, users.get(1, 0)),
    }


# --- time series --------------------------------------------------------------------------


def conversation_series(*, tenant, bot=None, window: Window, granularity: str, use_rollups: bool = True) -> dict:
    """A zero-filled series of conversations, messages, leads and fallbacks per local hour, day or week."""
    thresholds, starts = bucket_thresholds(window, granularity)
    buckets = [
        part.counts
        for part in bucketed_counts(
            tenant=tenant, bot=bot, thresholds=thresholds, with_latency=False, use_rollups=use_rollups
        )
    ]
    points = [
        {
            "label": bucket_label(nominal, granularity, window.tz),
            "start": low,
            "end": high,
            "conversations": counts.conversations,
            "messages": counts.messages,
            "leads": counts.leads,
            "fallbacks": counts.fallbacks,
        }
        for nominal, (low, high), counts in zip(starts, pairwise(thresholds), buckets, strict=True)
    ]
    totals = {
        name: sum(point[name] for point in points) for name in ("conversations", "messages", "leads", "fallbacks")
    }
    return {
        "object": "analytics.conversations",
        "bot_id": bot.public_id if bot else None,
        "granularity": granularity,
        "timezone": window.tz.key,
        "start": window.start,
        "end": window.end,
        "totals": totals,
        "data": points,
    }


# --- leads -----------------------------------------------------------------------------------


def lead_list(*, tenant, bot=None, window: Window):
    """The tenant's leads captured in `window` (newest first when paginated)."""
    leads = Lead.objects.filter(tenant=tenant, captured_at__gte=window.start, captured_at__lt=window.end)
    if bot is not None:
        leads = leads.filter(bot=bot)
    return leads.select_related("bot", "conversation", "message")


# --- unanswered questions ------------------------------------------------------------------


@dataclass(frozen=True)
class UnansweredQuestion:
    question: str
    normalized: str
    count: int
    last_asked_at: datetime
    conversation_id: str


def unanswered_questions(
    *, tenant, bot=None, window: Window, limit: int, offset: int = 0
) -> tuple[list[UnansweredQuestion], bool]:
    """The user messages answered with the fallback, grouped by normalised text, most frequent first.

    Each fallback answer is paired with the user message just before it in its
    conversation. Returns (up to `limit` questions from `offset`, whether there are more).
    """
    rows = queries.unanswered_rows(
        tenant_id=tenant.pk,
        bot_id=bot.pk if bot else None,
        start=window.start,
        end=window.end,
        limit=limit + 1,
        offset=offset,
    )
    return [UnansweredQuestion(*row) for row in rows[:limit]], len(rows) > limit


# --- admin: usage this month against the plan ------------------------------------------------


def tenant_usage_list():
    """Tenants with this month's usage counters and their object counts, for the read-only admin view."""
    period = current_period_start()
    month_start = datetime.combine(period, datetime.min.time(), tzinfo=UTC)
    usage = UsageCounter.objects.filter(tenant=OuterRef("pk"), period_start=period)

    def usage_field(name):
        return Coalesce(Subquery(usage.values(name)[:1]), Value(0), output_field=BigIntegerField())

    def per_tenant(queryset, aggregate):
        rows = queryset.filter(tenant=OuterRef("pk")).order_by().values("tenant").annotate(n=aggregate).values("n")
        return Coalesce(Subquery(rows[:1]), Value(0), output_field=BigIntegerField())

    return (
        TenantUsage.objects.select_related("plan")
        .annotate(
            messages_this_month=usage_field("messages"),
            api_requests_this_month=usage_field("api_requests"),
            prompt_tokens_this_month=usage_field("prompt_tokens"),
            completion_tokens_this_month=usage_field("completion_tokens"),
            bot_count=per_tenant(Bot.objects.all(), Count("pk")),
            document_count=per_tenant(Document.objects.all(), Count("pk")),
            storage_bytes=per_tenant(Document.objects.all(), Sum("size_bytes")),
            conversations_this_month=per_tenant(Conversation.objects.filter(created_at__gte=month_start), Count("pk")),
            leads_this_month=per_tenant(Lead.objects.filter(captured_at__gte=month_start), Count("pk")),
        )
        .order_by("name")
    )


def tenants_due_for_rollup(*, today: date):
    """Ids of active tenants whose rollups do not reach yesterday yet."""
    yesterday = today - timedelta(days=1)
    return (
        Tenant.objects.filter(status=Tenant.Status.ACTIVE)
        .filter(Q(rollup_state__isnull=True) | Q(rollup_state__rolled_up_through__lt=yesterday))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
