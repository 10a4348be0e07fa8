"""Reads for `GET /v1/analytics/usage` and the admin's usage page: one tenant's usage against its plan.

Monthly figures (messages, API requests, tokens) come from the usage counters
that the quota check and the request counter write (`accounts.UsageCounter`,
and `accounts.UsageDay` for the daily series); conversations and leads are
counted from their rows; bots, documents and storage are what the tenant holds
now, whatever the month asked for, because that is what the plan limits.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import Tenant, UsageCounter, UsageDay
from bots.models import Bot
from conversations.models import Conversation, Lead
from knowledge.models import Document

BYTES_PER_MB = 1024 * 1024
DAILY_FIELDS = ("messages", "api_requests", "prompt_tokens", "completion_tokens")


@dataclass(frozen=True)
class Allowance:
    """What is used of one limit; `limit` and `remaining` are None when the plan sets no limit."""

    used: int
    limit: int | None

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The first instant of the UTC calendar month that holds `month`, and of the next one."""
    start = month.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return datetime.combine(start, datetime.min.time(), tzinfo=UTC), datetime.combine(
        following, datetime.min.time(), tzinfo=UTC
    )


def tenant_usage_get(*, tenant: Tenant, month: date | None = None) -> dict:
    """`tenant`'s usage in the billing month (UTC calendar month) holding `month` (default: this one).

    Each figure beside the plan's limit and what is left of it, and a daily
    series of the counted figures, zero-filled, for the month's days up to today.
    """
    now = timezone.now()
    month = (month or now.date()).replace(day=1)
    start, end = month_bounds(month)
    plan = tenant.plan
    counter = UsageCounter.objects.filter(tenant=tenant, period_start=month).first() or UsageCounter()
    documents = Document.objects.filter(tenant=tenant).aggregate(count=Count("pk"), bytes=Sum("size_bytes"))
    storage_limit = plan.max_storage_mb * BYTES_PER_MB if plan.max_storage_mb is not None else None
    rows = {
        row["day"]: row
        for row in UsageDay.objects.filter(tenant=tenant, day__gte=start.date(), day__lt=end.date()).values(
            "day", *DAILY_FIELDS
        )
    }
    last_day = min(end.date() - timedelta(days=1), now.date())
    days = []
    day = start.date()
    while day <= last_day:
        row = rows.get(day, {})
        days.append({"date": day, **{field: row.get(field, 0) for field in DAILY_FIELDS}})
        day += timedelta(days=1)
    return {
        "object": "analytics.usage",
        "month": f"{month:%Y-%m}",
        "start": start,
        "end": end,
        "plan": {"id": plan.slug, "name": plan.name, "requests_per_minute": plan.requests_per_minute},
        "messages": Allowance(counter.messages, plan.max_messages_per_month),
        "api_requests": Allowance(counter.api_requests, None),
        "prompt_tokens": Allowance(counter.prompt_tokens, None),
        "completion_tokens": Allowance(counter.completion_tokens, None),
        "conversations": Allowance(
            Conversation.objects.filter(tenant=tenant, created_at__gte=start, created_at__lt=end).count(), None
        ),
        "leads": Allowance(
            Lead.objects.filter(tenant=tenant, captured_at__gte=start, captured_at__lt=end).count(), None
        ),
        "bots": Allowance(Bot.objects.filter(tenant=tenant).count(), plan.max_bots),
        "documents": Allowance(documents["count"] or 0, plan.max_documents),
        "storage_bytes": Allowance(documents["bytes"] or 0, storage_limit),
        "daily": days,
    }
