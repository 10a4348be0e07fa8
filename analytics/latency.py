"""Latency percentiles that can be merged across days: a log-bucket histogram (the DDSketch idea).

A latency of v ms (v ≥ 1) falls in bucket k = ceil(log_γ v), i.e. γ^(k-1) < v ≤ γ^k,
with γ = (1 + α) / (1 - α). Reporting a bucket as 2γ^k / (γ + 1) is within α of
every value in it, so a percentile read from the histogram is within α (1 %) of
the exact nearest-rank percentile, and histograms of days add up to the histogram
of the whole range. A latency of 0 has its own bucket (-1).

Histograms are dense arrays (slot = bucket + 1) covering every possible
`latency_ms` (a PositiveIntegerField, < 2^31): about a thousand slots, stored as
little-endian uint32 (a few kB, mostly zeros, which PostgreSQL compresses), and
merged with a NumPy sum. Bucket indexes are computed only in SQL (`BUCKET_SQL`),
by the rollup and by the live queries alike, so both put a value in the same bucket.
"""

import math

import numpy as np

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
ZERO_BUCKET = -1
MAX_LATENCY_MS = 2**31 - 1
# One more than the bucket of the largest latency, so float rounding can never fall off the end.
MAX_BUCKET = math.ceil(math.log(MAX_LATENCY_MS) / math.log(GAMMA)) + 1
SLOTS = MAX_BUCKET - ZERO_BUCKET + 1

# `latency_ms` is a non-negative integer column; the constants are ours, not user input.
BUCKET_SQL = (
    f"(CASE WHEN latency_ms = 0 THEN {ZERO_BUCKET} "
    f"ELSE least(ceil(ln(latency_ms) / ln({GAMMA!r}))::int, {MAX_BUCKET}) END)"
)

_VALUES = np.array([0.0] + [2 * GAMMA**bucket / (GAMMA + 1) for bucket in range(0, MAX_BUCKET + 1)])


def empty_histogram() -> np.ndarray:
    return np.zeros(SLOTS, dtype=np.int64)


def histogram_add(histogram: np.ndarray, bucket: int, count: int) -> None:
    histogram[bucket - ZERO_BUCKET] += count


def histogram_to_bytes(histogram: np.ndarray) -> bytes:
    return histogram.astype("<u4").tobytes()


def histogram_from_bytes(stored: bytes) -> np.ndarray:
    if not stored:
        return empty_histogram()
    return np.frombuffer(bytes(stored), dtype="<u4").astype(np.int64)


def histogram_percentile(histogram: np.ndarray, quantile: float) -> int | None:
    """The nearest-rank percentile (0 < quantile ≤ 1) in whole ms, or None for an empty histogram."""
    running = np.cumsum(histogram)
    total = int(running[-1])
    if total == 0:
        return None
    rank = max(1, math.ceil(quantile * total))
    return round(float(_VALUES[int(np.searchsorted(running, rank))]))
