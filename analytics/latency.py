"""Latency percentiles that can be merged across days: a log-bucket histogram (the DDSketch idea).

A latency of v ms (v ≥ 1) falls in bucket k = ceil(log_γ v), i.e. γ^(k-1) < v ≤ γ^k,
with γ = (1 + α) / (1 - α). Reporting a bucket as 2γ^k / (γ + 1) is within α of
every value in it, so a percentile read from the histogram is within α (1 %) of
the exact nearest-rank percentile, and histograms of days add up to the histogram
of the whole range. A latency of 0 has its own bucket (-1).

Bucket indexes are computed only in SQL (`BUCKET_SQL`), by the rollup and by the
live queries alike, so both paths put every value in the same bucket.
"""

import math
from collections.abc import Iterable, Mapping

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
ZERO_BUCKET = -1

# `latency_ms` is a non-negative integer column; the constant is ours, not user input.
BUCKET_SQL = f"(CASE WHEN latency_ms = 0 THEN {ZERO_BUCKET} ELSE ceil(ln(latency_ms) / ln({GAMMA!r}))::int END)"


def bucket_value(bucket: int) -> float:
    """The value that represents a bucket (within RELATIVE_ACCURACY of everything in it)."""
    if bucket == ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**bucket / (GAMMA + 1)


def histogram_merge(pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Add up (bucket, count) pairs into one histogram."""
    merged: dict[int, int] = {}
    for bucket, count in pairs:
        merged[bucket] = merged.get(bucket, 0) + count
    return merged


def histogram_percentile(histogram: Mapping[int, int], quantile: float) -> int | None:
    """The nearest-rank percentile (0 < quantile ≤ 1) in whole ms, or None for an empty histogram."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(quantile * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return round(bucket_value(bucket))
    raise AssertionError("unreachable: rank ≤ total")
