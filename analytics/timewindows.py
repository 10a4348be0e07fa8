"""Time ranges and time-series buckets in an IANA time zone, correct across DST changes.

Bucket boundaries are computed here with `zoneinfo`, as UTC instants, and handed
to PostgreSQL as a sorted array for `width_bucket`: the database never decides
where a local day starts, so the zero-filled series and the counted rows agree
by construction. A local day is 23 or 25 hours long on DST change days.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

GRANULARITIES = ("hour", "day", "week")
DEFAULT_RANGE_DAYS = 30
MAX_RANGE = timedelta(days=366)
MAX_HOURLY_RANGE = timedelta(days=31)


@dataclass(frozen=True)
class Window:
    """A half-open range [start, end) of UTC instants, read in `tz`."""

    start: datetime
    end: datetime
    tz: ZoneInfo

    @property
    def previous(self) -> "Window":
        """The period of the same length that ends where this one starts."""
        length = self.end - self.start
        return Window(start=self.start - length, end=self.start, tz=self.tz)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local calendar day, in UTC.

    Where midnight itself is skipped by a DST change, fold=0 reads it with the
    offset before the change, which is exactly the instant of the change: the
    day's real start.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def bucket_floor(instant: datetime, granularity: str, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the local hour, day or ISO week (Monday) that contains `instant`."""
    local = instant.astimezone(tz)
    if granularity == "hour":
        # The aware local time keeps its fold, so the repeated hour of a DST fall-back stays distinct.
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if granularity == "week":
        day -= timedelta(days=day.weekday())
    return local_midnight(day, tz)


def bucket_next(boundary: datetime, granularity: str, tz: ZoneInfo) -> datetime:
    """The start of the bucket after the one starting at `boundary`."""
    if granularity == "hour":
        following = bucket_floor(boundary + timedelta(hours=1), "hour", tz)
        # Zones whose DST shift is not a whole hour can floor back onto `boundary`.
        return following if following > boundary else boundary + timedelta(hours=1)
    local_day = boundary.astimezone(tz).date()
    return local_midnight(local_day + timedelta(days=7 if granularity == "week" else 1), tz)


def bucket_thresholds(window: Window, granularity: str) -> tuple[list[datetime], list[datetime]]:
    """Return (thresholds, bucket starts) for a zero-filled series over `window`.

    `thresholds` is [window.start, every bucket boundary inside the window, window.end]:
    bucket i counts rows in [thresholds[i], thresholds[i + 1]). `bucket starts`
    holds each bucket's nominal local start (the first one may begin before
    window.start when the window starts mid-bucket).
    """
    nominal = bucket_floor(window.start, granularity, window.tz)
    thresholds = [window.start]
    starts = [nominal]
    boundary = bucket_next(nominal, granularity, window.tz)
    while boundary < window.end:
        thresholds.append(boundary)
        starts.append(boundary)
        boundary = bucket_next(boundary, granularity, window.tz)
    thresholds.append(window.end)
    return thresholds, starts


def bucket_label(start: datetime, granularity: str, tz: ZoneInfo) -> str:
    """A local label: `2026-03-08` for days and weeks, `2026-11-01T01:00:00-05:00` for hours."""
    local = start.astimezone(tz)
    if granularity == "hour":
        return local.isoformat()
    return local.date().isoformat()


def utc_day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def whole_utc_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The UTC days lying wholly inside [start, end), as a half-open range of dates (may be empty)."""
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    first = start_utc.date()
    if start_utc != utc_day_start(first):
        first += timedelta(days=1)
    return first, end_utc.date()
