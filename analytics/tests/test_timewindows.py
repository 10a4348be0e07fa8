from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from analytics.selectors import split_rolled_up
from analytics.timewindows import Window, bucket_label, bucket_thresholds, local_midnight, whole_utc_days

NEW_YORK = ZoneInfo("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_new_york_day_is_23_hours_long_when_clocks_spring_forward():
    window = Window(
        start=local_midnight(date(2026, 3, 7), NEW_YORK), end=local_midnight(date(2026, 3, 10), NEW_YORK), tz=NEW_YORK
    )
    thresholds, starts = bucket_thresholds(window, "day")
    assert thresholds == [utc(2026, 3, 7, 5), utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), utc(2026, 3, 10, 4)]
    assert [bucket_label(s, "day", NEW_YORK) for s in starts] == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert thresholds[2] - thresholds[1] == timedelta(hours=23)


def test_a_new_york_day_is_25_hours_long_when_clocks_fall_back():
    window = Window(
        start=local_midnight(date(2026, 11, 1), NEW_YORK), end=local_midnight(date(2026, 11, 2), NEW_YORK), tz=NEW_YORK
    )
    thresholds, _ = bucket_thresholds(window, "day")
    assert thresholds == [utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)]


def test_hourly_buckets_skip_the_missing_hour_and_repeat_the_doubled_one():
    spring = Window(
        start=local_midnight(date(2026, 3, 8), NEW_YORK), end=local_midnight(date(2026, 3, 9), NEW_YORK), tz=NEW_YORK
    )
    _, starts = bucket_thresholds(spring, "hour")
    labels = [bucket_label(s, "hour", NEW_YORK) for s in starts]
    assert len(labels) == 23
    assert labels[:3] == ["2026-03-08T00:00:00-05:00", "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"]

    autumn = Window(
        start=local_midnight(date(2026, 11, 1), NEW_YORK), end=local_midnight(date(2026, 11, 2), NEW_YORK), tz=NEW_YORK
    )
    _, starts = bucket_thresholds(autumn, "hour")
    labels = [bucket_label(s, "hour", NEW_YORK) for s in starts]
    assert len(labels) == 25
    assert labels[1:4] == ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"]


def test_hourly_buckets_follow_half_hour_offsets():
    kolkata = ZoneInfo("Asia/Kolkata")
    window = Window(start=utc(2026, 3, 8, 0, 0), end=utc(2026, 3, 8, 3, 0), tz=kolkata)
    thresholds, starts = bucket_thresholds(window, "hour")
    # 00:00Z is 05:30 in Kolkata: the first bucket is clipped to the window, the rest start at :30 UTC.
    assert thresholds == [
        utc(2026, 3, 8, 0),
        utc(2026, 3, 8, 0, 30),
        utc(2026, 3, 8, 1, 30),
        utc(2026, 3, 8, 2, 30),
        utc(2026, 3, 8, 3),
    ]
    assert bucket_label(starts[0], "hour", kolkata) == "2026-03-08T05:00:00+05:30"


def test_weeks_start_on_local_mondays():
    window = Window(start=utc(2026, 3, 4, 12), end=utc(2026, 3, 20), tz=NEW_YORK)
    thresholds, starts = bucket_thresholds(window, "week")
    assert [bucket_label(s, "week", NEW_YORK) for s in starts] == ["2026-03-02", "2026-03-09", "2026-03-16"]
    # Monday 9 March starts at 04:00Z: daylight time began the day before.
    assert thresholds[1:3] == [utc(2026, 3, 9, 4), utc(2026, 3, 16, 4)]


def test_a_skipped_local_midnight_starts_the_day_at_the_clock_change():
    # Chile springs forward at 24:00 → 01:00: 6 September 2026 has no 00:00.
    santiago = ZoneInfo("America/Santiago")
    assert local_midnight(date(2026, 9, 6), santiago) == utc(2026, 9, 6, 4)
    assert datetime(2026, 9, 6, 1, tzinfo=santiago).astimezone(UTC) == utc(2026, 9, 6, 4)


def test_whole_utc_days_are_those_wholly_inside_the_range():
    assert whole_utc_days(utc(2026, 3, 1, 10), utc(2026, 3, 4, 5)) == (date(2026, 3, 2), date(2026, 3, 4))
    assert whole_utc_days(utc(2026, 3, 1), utc(2026, 3, 3)) == (date(2026, 3, 1), date(2026, 3, 3))
    first, end = whole_utc_days(utc(2026, 3, 1, 10), utc(2026, 3, 1, 20))
    assert first >= end


def test_rolled_up_days_are_used_only_inside_one_bucket_and_up_to_the_watermark():
    thresholds = [utc(2026, 3, 1, 10), utc(2026, 3, 3), utc(2026, 3, 6, 12)]
    runs, live = split_rolled_up(thresholds, through=date(2026, 3, 4))
    assert runs == [(date(2026, 3, 2), date(2026, 3, 5))]
    assert live == [(utc(2026, 3, 1, 10), utc(2026, 3, 2)), (utc(2026, 3, 5), utc(2026, 3, 6, 12))]


def test_nothing_is_rolled_up_for_local_days_that_are_not_utc_days():
    window = Window(
        start=local_midnight(date(2026, 3, 1), NEW_YORK), end=local_midnight(date(2026, 3, 5), NEW_YORK), tz=NEW_YORK
    )
    thresholds, _ = bucket_thresholds(window, "day")
    runs, live = split_rolled_up(thresholds, through=date(2026, 3, 31))
    assert runs == []
    assert live == [(thresholds[0], thresholds[-1])]


def test_without_a_watermark_everything_is_live():
    thresholds = [utc(2026, 3, 1), utc(2026, 3, 10)]
    assert split_rolled_up(thresholds, through=None) == ([], [(utc(2026, 3, 1), utc(2026, 3, 10))])
