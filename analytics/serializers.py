"""Query-parameter validation and response shapes for the analytics endpoints.

Invalid parameters raise `bothero.errors.ValidationError` with a stable code
(`invalid_date`, `invalid_range`, `range_too_long`, `unknown_timezone`,
`invalid_granularity`, `invalid_format`), which the exception handler renders
in the error envelope with status 400.
"""

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.timewindows import (
    DEFAULT_RANGE_DAYS,
    GRANULARITIES,
    MAX_HOURLY_RANGE,
    MAX_RANGE,
    Window,
    local_midnight,
)
from bothero.api.pagination import CURSOR_SCHEMA, DEFAULT_LIMIT, MAX_LIMIT, parse_limit
from bothero.errors import ValidationError
from conversations.models import Lead

MIN_YEAR, MAX_YEAR = 1970, 9998
# The years above, as a pattern on the OpenAPI `date` / `date-time` strings.
YEAR_PATTERN = r"^(19[7-9][0-9]|[2-9][0-9]{3})-"
INSTANT_SCHEMA = {
    "anyOf": [
        {"type": "string", "format": "date", "pattern": YEAR_PATTERN},
        {"type": "string", "format": "date-time", "pattern": YEAR_PATTERN},
    ]
}
TIME_ZONES = sorted(available_timezones())
_TIME_ZONE_NAMES = frozenset(TIME_ZONES)
# `+05:00` sent unencoded in a query string arrives as ` 05:00`.
UNENCODED_PLUS_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")


def parse_timezone(name: str) -> ZoneInfo:
    try:
        # Only the names the schema lists: ZoneInfo also opens files such as "posixrules".
        if name not in _TIME_ZONE_NAMES:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"Unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'.",
            code="unknown_timezone",
            param="timezone",
        ) from None


def parse_instant(raw: str, *, param: str, tz: ZoneInfo, is_end: bool) -> datetime:
    """An ISO 8601 date or date-time as a UTC instant.

    A date is a whole local day in `tz`: as `start` it means that day's first
    instant, as `end` the first instant of the next day (so `end` is inclusive
    of the date). A date-time without an offset is read in `tz`.
    """
    text = UNENCODED_PLUS_OFFSET.sub(r"+\1", raw)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if not MIN_YEAR <= day.year <= MAX_YEAR:
                raise ValueError
            return local_midnight(day + timedelta(days=1) if is_end else day, tz)
        moment = datetime.fromisoformat(text)
        if not MIN_YEAR <= moment.year <= MAX_YEAR:
            raise ValueError
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"{param} must be an ISO 8601 date (2026-03-08) or date-time (2026-03-08T09:30:00Z), "
            f"between {MIN_YEAR} and {MAX_YEAR}; got {raw!r}.",
            code="invalid_date",
            param=param,
        ) from None


class StrictChoiceField(serializers.ChoiceField):
    """A choice whose wrong value is a 400 with its own code (`invalid_<param>`)."""

    def to_internal_value(self, data):
        if data not in self.choices:
            raise ValidationError(
                f"{self.field_name} must be one of {', '.join(self.choices)}; got {data!r}.",
                code=f"invalid_{self.field_name}",
                param=self.field_name,
            )
        return data


@extend_schema_field(INSTANT_SCHEMA)
class InstantField(serializers.CharField):
    """An ISO 8601 date or date-time (parsed with the time zone in `RangeQuerySerializer.validate`)."""

    def __init__(self, **kwargs):
        # Exactly what the schema allows: " 2026-03-08" is not a date.
        super().__init__(trim_whitespace=False, **kwargs)


@extend_schema_field({"type": "string", "enum": TIME_ZONES})
class TimeZoneField(serializers.CharField):
    """An IANA time zone name (checked in `RangeQuerySerializer.validate`: 400 `unknown_timezone`)."""

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)


@extend_schema_field(CURSOR_SCHEMA)
class CursorField(serializers.CharField):
    """A `next_cursor` (checked by `decode_cursor`: 400 `invalid_cursor`)."""

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)


class RangeQuerySerializer(serializers.Serializer):
    """`bot_id`, `start`, `end` and `timezone`, shared by every analytics endpoint.

    Rules across parameters (checked in `validate`, 400): `end` after `start`, the range at most
    366 days (31 for hourly series).
    """

    bot_id = serializers.CharField(required=False, help_text="Only this bot (default: all the tenant's bots).")
    start = InstantField(
        required=False,
        help_text="ISO 8601 date or date-time; a date means its first instant in `timezone`. "
        f"Default: {DEFAULT_RANGE_DAYS} days before `end` (with neither given: the last "
        f"{DEFAULT_RANGE_DAYS} days including today).",
    )
    end = InstantField(
        required=False,
        help_text="ISO 8601 date or date-time, exclusive; a date includes that whole day. Default: now. "
        "At most 366 days after `start`.",
    )
    timezone = TimeZoneField(
        required=False, default="UTC", help_text="IANA time zone for dates and buckets, e.g. `America/New_York`."
    )

    max_range = MAX_RANGE

    def validate(self, attrs):
        tz = parse_timezone(attrs["timezone"])
        raw_start, raw_end = attrs.get("start"), attrs.get("end")
        now = timezone.now()
        end = parse_instant(raw_end, param="end", tz=tz, is_end=True) if raw_end else now
        if raw_start:
            start = parse_instant(raw_start, param="start", tz=tz, is_end=False)
        elif raw_end:
            start = end - timedelta(days=DEFAULT_RANGE_DAYS)
        else:
            start = local_midnight(now.astimezone(tz).date() - timedelta(days=DEFAULT_RANGE_DAYS - 1), tz)
        if end <= start:
            raise ValidationError("end must be after start.", code="invalid_range", param="end")
        limit = self.max_range_for(attrs)
        if end - start > limit:
            raise ValidationError(
                f"The range from start to end may be at most {limit.days} days{self.range_note(attrs)}.",
                code="range_too_long",
                param="end",
            )
        return {**attrs, "window": Window(start=start, end=end, tz=tz)}

    def max_range_for(self, attrs) -> timedelta:
        return self.max_range

    def range_note(self, attrs) -> str:
        return ""


class SeriesQuerySerializer(RangeQuerySerializer):
    granularity = StrictChoiceField(
        choices=GRANULARITIES, required=False, default="day", help_text="Bucket size (default `day`)."
    )

    def max_range_for(self, attrs) -> timedelta:
        return MAX_HOURLY_RANGE if attrs.get("granularity") == "hour" else MAX_RANGE

    def range_note(self, attrs) -> str:
        return " for hourly buckets" if attrs.get("granularity") == "hour" else ""


class LimitField(serializers.IntegerField):
    """`limit`, validated like every list endpoint's (`invalid_limit`)."""

    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_LIMIT, **kwargs)

    def to_internal_value(self, data):
        return parse_limit(str(data))


class PageQuerySerializer(RangeQuerySerializer):
    limit = LimitField(required=False, default=DEFAULT_LIMIT, help_text=f"1–{MAX_LIMIT}, default {DEFAULT_LIMIT}.")
    cursor = CursorField(required=False, help_text="The `next_cursor` of the previous page.")


class LeadQuerySerializer(PageQuerySerializer):
    format = StrictChoiceField(
        choices=["json", "csv"],
        required=False,
        help_text="`json` (default) or `csv`: CSV streams every matching lead (same as `Accept: text/csv`); "
        "`limit` and `cursor` then do not apply.",
    )


class UnansweredQuerySerializer(PageQuerySerializer):
    pass


# --- responses ---------------------------------------------------------------------------------


class PeriodFiguresSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive.")
    conversations = serializers.IntegerField(help_text="Conversations started in the period.")
    messages = serializers.IntegerField(help_text="User and assistant messages.")
    user_messages = serializers.IntegerField()
    assistant_messages = serializers.IntegerField()
    unique_end_users = serializers.IntegerField(
        help_text="Distinct `end_user_id`s of the conversations started in the period; "
        "each conversation without one counts as one user."
    )
    leads = serializers.IntegerField(help_text="Leads captured in the period.")
    avg_messages_per_conversation = serializers.FloatField(
        allow_null=True, help_text="messages / conversations of the period (null without conversations)."
    )
    answered_from_knowledge_rate = serializers.FloatField(
        allow_null=True,
        help_text="Share of assistant messages with sources that are not the fallback answer (0–1).",
    )
    fallback_rate = serializers.FloatField(
        allow_null=True, help_text="Share of assistant messages that are the bot's fallback answer (0–1)."
    )
    feedback_up = serializers.IntegerField()
    feedback_down = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    latency_median_ms = serializers.IntegerField(
        allow_null=True, help_text="Median assistant response latency (within 1 %)."
    )
    latency_p95_ms = serializers.IntegerField(allow_null=True, help_text="95th percentile latency (within 1 %).")


class OverviewSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="`analytics.overview`")
    bot_id = serializers.CharField(allow_null=True)
    timezone = serializers.CharField()
    current = PeriodFiguresSerializer()
    previous = PeriodFiguresSerializer(help_text="The period of the same length just before `current`.")


class SeriesTotalsSerializer(serializers.Serializer):
    conversations = serializers.IntegerField()
    messages = serializers.IntegerField()
    leads = serializers.IntegerField()
    fallbacks = serializers.IntegerField()


class SeriesPointSerializer(serializers.Serializer):
    label = serializers.CharField(
        help_text="The bucket's local start: a date for days and weeks, a date-time with offset for hours."
    )
    start = serializers.DateTimeField(help_text="First instant counted (UTC).")
    end = serializers.DateTimeField(help_text="First instant not counted (UTC).")
    conversations = serializers.IntegerField()
    messages = serializers.IntegerField()
    leads = serializers.IntegerField()
    fallbacks = serializers.IntegerField()


class SeriesSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="`analytics.conversations`")
    bot_id = serializers.CharField(allow_null=True)
    granularity = serializers.ChoiceField(choices=GRANULARITIES)
    timezone = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    totals = SeriesTotalsSerializer()
    data = SeriesPointSerializer(many=True)


class LeadSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    bot_id = serializers.CharField(source="bot.public_id")
    conversation_id = serializers.CharField(source="conversation.public_id")
    message_id = serializers.CharField(source="message.public_id", allow_null=True, default=None)
    message = serializers.CharField(
        source="message.content", allow_null=True, default=None, help_text="The user message the lead came from."
    )
    end_user_id = serializers.CharField(
        source="conversation.end_user_id", help_text="The conversation's end user (a verified widget user's id)."
    )

    class Meta:
        model = Lead
        fields = [
            "id",
            "object",
            "name",
            "email",
            "phone",
            "end_user_id",
            "bot_id",
            "conversation_id",
            "captured_at",
            "message_id",
            "message",
        ]

    def get_object(self, obj) -> str:
        return "lead"


class UnansweredQuestionSerializer(serializers.Serializer):
    object = serializers.SerializerMethodField()
    question = serializers.CharField(help_text="The latest wording of the question.")
    normalized = serializers.CharField(help_text="What questions were grouped by: lower case, trimmed.")
    count = serializers.IntegerField(help_text="Fallback answers it got in the range.")
    last_asked_at = serializers.DateTimeField()
    conversation_id = serializers.CharField(help_text="The latest conversation it was asked in.")

    def get_object(self, obj) -> str:
        return "unanswered_question"


class ListEnvelopeSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="`list`")
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class LeadListSerializer(ListEnvelopeSerializer):
    data = LeadSerializer(many=True)


class UnansweredListSerializer(ListEnvelopeSerializer):
    data = UnansweredQuestionSerializer(many=True)


# --- usage -------------------------------------------------------------------------------------


MONTH_PATTERN = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$"


@extend_schema_field({"type": "string", "pattern": MONTH_PATTERN})
class MonthField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)


class UsageQuerySerializer(serializers.Serializer):
    month = MonthField(
        required=False,
        help_text="The billing month (UTC calendar month) as `YYYY-MM`, not in the future; default: this month.",
    )

    def validate_month(self, value: str) -> date:
        try:
            # strptime alone would also take "2026-3".
            if not re.fullmatch(MONTH_PATTERN, value):
                raise ValueError(value)
            month = datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            raise ValidationError(
                f"month must be a month as YYYY-MM (2026-03); got {value!r}.", code="invalid_month", param="month"
            ) from None
        if month > timezone.now().date():
            raise ValidationError("month must not be in the future.", code="invalid_month", param="month")
        return month


class AllowanceSerializer(serializers.Serializer):
    used = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True, help_text="The plan's limit; null: unlimited.")
    remaining = serializers.IntegerField(allow_null=True, help_text="`limit - used`, never below 0; null: unlimited.")


class UsagePlanSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The plan's slug, e.g. `legend`.")
    name = serializers.CharField()
    requests_per_minute = serializers.IntegerField(help_text="The API rate limit (see `X-RateLimit-*`).")


class UsageReportDaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="A UTC day.")
    messages = serializers.IntegerField()
    api_requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()


class UsageReportSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="`analytics.usage`")
    month = serializers.CharField(help_text="`YYYY-MM`")
    start = serializers.DateTimeField(help_text="The month's first instant (UTC).")
    end = serializers.DateTimeField(help_text="The next month's first instant: when the monthly quota resets.")
    plan = UsagePlanSerializer()
    messages = AllowanceSerializer(help_text="Customer messages charged this month (the monthly quota).")
    api_requests = AllowanceSerializer(help_text="API requests answered this month (limited per minute only).")
    prompt_tokens = AllowanceSerializer()
    completion_tokens = AllowanceSerializer()
    conversations = AllowanceSerializer(help_text="Conversations started in the month.")
    leads = AllowanceSerializer(help_text="Leads captured in the month.")
    bots = AllowanceSerializer(help_text="Bots now (not per month).")
    documents = AllowanceSerializer(help_text="Documents now (not per month).")
    storage_bytes = AllowanceSerializer(help_text="Bytes of stored documents now (the plan's MB × 1,048,576).")
    daily = UsageReportDaySerializer(many=True, help_text="Each UTC day of the month up to today, zero-filled.")
