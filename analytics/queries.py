"""The SQL behind analytics: the same aggregate queries serve the daily rollup and the live edges.

Every query is filtered by tenant first (and bot when given) so it runs on the
`(tenant, bot, created_at)` / `(tenant, created_at)` indexes. Rows are grouped
either by bot (the rollup of one day) or by time bucket, with `width_bucket`
over a sorted array of UTC boundaries computed in Python (see timewindows).

Definitions (docs/analytics.md repeats them):
* answered from knowledge: an assistant message with non-empty `sources` that
  is not the bot's fallback answer;
* fallback: an assistant message with `is_fallback`;
* latency: assistant messages' `latency_ms` (see analytics.latency).
"""

from dataclasses import dataclass, field, fields
from datetime import date, datetime

import numpy as np
from django.db import connection

from analytics.latency import BUCKET_SQL, empty_histogram, histogram_add, histogram_from_bytes
from analytics.models import DailyRollup
from analytics.sketches import EXACT_LIMIT
from conversations.models import Conversation, Lead, Message

MESSAGES = Message._meta.db_table
CONVERSATIONS = Conversation._meta.db_table
LEADS = Lead._meta.db_table
ROLLUPS = DailyRollup._meta.db_table


@dataclass
class Counts:
    """Additive figures for one group (a bot's day, or a time bucket)."""

    conversations: int = 0
    anonymous_conversations: int = 0
    user_messages: int = 0
    assistant_messages: int = 0
    answered_from_knowledge: int = 0
    fallbacks: int = 0
    feedback_up: int = 0
    feedback_down: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    leads: int = 0
    latency_histogram: np.ndarray = field(default_factory=empty_histogram)

    def add(self, other: "Counts") -> "Counts":
        for name in ADDITIVE_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency_histogram = self.latency_histogram + other.latency_histogram
        return self

    @property
    def messages(self) -> int:
        return self.user_messages + self.assistant_messages

    def figures(self) -> dict:
        """The additive figures by name (what a rollup row stores besides its histogram)."""
        return {name: getattr(self, name) for name in ADDITIVE_FIELDS}


ADDITIVE_FIELDS = tuple(f.name for f in fields(Counts) if f.name != "latency_histogram")
MESSAGE_FIELDS = (
    "user_messages",
    "assistant_messages",
    "answered_from_knowledge",
    "fallbacks",
    "feedback_up",
    "feedback_down",
    "prompt_tokens",
    "completion_tokens",
)

MESSAGE_AGGREGATES = """
    count(*) FILTER (WHERE role = 'user'),
    count(*) FILTER (WHERE role = 'assistant'),
    count(*) FILTER (WHERE role = 'assistant' AND NOT is_fallback AND sources <> '[]'::jsonb),
    count(*) FILTER (WHERE role = 'assistant' AND is_fallback),
    count(*) FILTER (WHERE feedback_rating = 'up'),
    count(*) FILTER (WHERE feedback_rating = 'down'),
    coalesce(sum(prompt_tokens), 0),
    coalesce(sum(completion_tokens), 0)
"""


@dataclass(frozen=True)
class GroupBy:
    """How rows are grouped: by bot, or into time buckets bounded by `thresholds`."""

    thresholds: tuple[datetime, ...] | None = None

    @classmethod
    def bot(cls) -> "GroupBy":
        return cls()

    @classmethod
    def buckets(cls, thresholds) -> "GroupBy":
        return cls(thresholds=tuple(thresholds))

    def key_sql(self, time_column: str) -> tuple[str, list]:
        if self.thresholds is None:
            return "bot_id", []
        return f"width_bucket({time_column}, %s::timestamptz[])", [list(self.thresholds)]


def _scope_sql(*, tenant_id: int, bot_id: int | None) -> tuple[str, list]:
    if bot_id is None:
        return "tenant_id = %s", [tenant_id]
    return "tenant_id = %s AND bot_id = %s", [tenant_id, bot_id]


def _ranges_sql(column: str, ranges) -> tuple[str, list]:
    """`(column in range 1 OR column in range 2 ...)` for half-open ranges."""
    clauses, params = [], []
    for low, high in ranges:
        clauses.append(f"({column} >= %s AND {column} < %s)")
        params += [low, high]
    return "(" + " OR ".join(clauses) + ")", params


def fetch_all(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def live_counts(
    *, tenant_id: int, bot_id: int | None, intervals, group: GroupBy, with_latency: bool = True
) -> dict[int, Counts]:
    """Count the raw rows whose timestamps fall in `intervals` ([start, end) pairs), per group."""
    result: dict[int, Counts] = {}
    if not intervals:
        return result

    def counts(key) -> Counts:
        if key not in result:
            result[key] = Counts()
        return result[key]

    scope, scope_params = _scope_sql(tenant_id=tenant_id, bot_id=bot_id)
    key, key_params = group.key_sql("created_at")
    ranges, range_params = _ranges_sql("created_at", intervals)
    params = key_params + scope_params + range_params

    if with_latency:
        # One scan for both: the (k) grouping gives the figures, the (k, b) groupings the latency histogram.
        rows = fetch_all(
            f"SELECT k, b, GROUPING(b), {MESSAGE_AGGREGATES}, count(*) FROM ("
            f"  SELECT {key} AS k, role, is_fallback, sources, feedback_rating, prompt_tokens, completion_tokens,"
            f"         CASE WHEN role = 'assistant' AND latency_ms IS NOT NULL THEN {BUCKET_SQL} END AS b"
            f"  FROM {MESSAGES} WHERE {scope} AND {ranges}"
            f") AS m GROUP BY GROUPING SETS ((k), (k, b))",
            params,
        )
        for group_key, bucket, only_key, *figures, number in rows:
            if only_key:
                target = counts(group_key)
                for name, value in zip(MESSAGE_FIELDS, figures, strict=True):
                    setattr(target, name, int(value))
            elif bucket is not None:
                histogram_add(counts(group_key).latency_histogram, int(bucket), int(number))
    else:
        for group_key, *figures in fetch_all(
            f"SELECT {key} AS k, {MESSAGE_AGGREGATES} FROM {MESSAGES} WHERE {scope} AND {ranges} GROUP BY k", params
        ):
            target = counts(group_key)
            for name, value in zip(MESSAGE_FIELDS, figures, strict=True):
                setattr(target, name, int(value))

    for group_key, number, anonymous in fetch_all(
        f"SELECT {key} AS k, count(*), count(*) FILTER (WHERE end_user_id = '') "
        f"FROM {CONVERSATIONS} WHERE {scope} AND {ranges} GROUP BY k",
        params,
    ):
        counts(group_key).conversations = int(number)
        counts(group_key).anonymous_conversations = int(anonymous)

    lead_key, lead_key_params = group.key_sql("captured_at")
    lead_ranges, lead_range_params = _ranges_sql("captured_at", intervals)
    for group_key, number in fetch_all(
        f"SELECT {lead_key} AS k, count(*) FROM {LEADS} WHERE {scope} AND {lead_ranges} GROUP BY k",
        lead_key_params + scope_params + lead_range_params,
    ):
        counts(group_key).leads = int(number)
    return result


def named_end_users(*, tenant_id: int, bot_id: int | None, intervals, group: GroupBy) -> dict[int, list[str]]:
    """The distinct non-empty `end_user_id`s of the conversations started in `intervals`, per group."""
    result: dict[int, list[str]] = {}
    if not intervals:
        return result
    scope, scope_params = _scope_sql(tenant_id=tenant_id, bot_id=bot_id)
    key, key_params = group.key_sql("created_at")
    ranges, range_params = _ranges_sql("created_at", intervals)
    for group_key, end_user_id in fetch_all(
        f"SELECT DISTINCT {key} AS k, end_user_id FROM {CONVERSATIONS} "
        f"WHERE {scope} AND {ranges} AND end_user_id <> ''",
        key_params + scope_params + range_params,
    ):
        result.setdefault(group_key, []).append(end_user_id)
    return result


@dataclass
class RolledUp:
    counts: dict[int, Counts]
    # Each bucket's days' stored end-user sketches (analytics.sketches): (registers, hashes or None).
    end_users: dict[int, list[tuple[bytes, bytes | None]]]


def rollup_counts(
    *,
    tenant_id: int,
    bot_id: int | None,
    day_runs: list[tuple[date, date]],
    thresholds,
    with_latency: bool = True,
    with_end_users: bool = False,
) -> RolledUp:
    """Add up the daily rollups of the days in `day_runs` ([first, end) date pairs), per time bucket.

    One row a day is read: the bot's, or the tenant's own row (bot null) for all bots.
    """
    result = RolledUp(counts={}, end_users={})
    if not day_runs:
        return result
    scope, scope_params = (
        ("tenant_id = %s AND bot_id IS NULL", [tenant_id])
        if bot_id is None
        else _scope_sql(tenant_id=tenant_id, bot_id=bot_id)
    )
    days, day_params = _ranges_sql("day", day_runs)
    columns = ", ".join(ADDITIVE_FIELDS)
    histogram = "latency_histogram" if with_latency else "NULL"
    # The exact hash lists are only worth fetching when the whole bucket can stay exact.
    end_users = (
        "end_user_registers, CASE WHEN bool_and(end_user_hashes IS NOT NULL) OVER bucket "
        f"AND sum(named_end_users) OVER bucket <= {EXACT_LIMIT} THEN end_user_hashes END"
        if with_end_users
        else "NULL, NULL"
    )
    for group_key, *figures, latency, registers, hashes in fetch_all(
        f"SELECT width_bucket((day::timestamp AT TIME ZONE 'UTC'), %s::timestamptz[]) AS k, "
        f"{columns}, {histogram}, {end_users} FROM {ROLLUPS} WHERE {scope} AND {days} "
        "WINDOW bucket AS (PARTITION BY width_bucket((day::timestamp AT TIME ZONE 'UTC'), %s::timestamptz[]))",
        [list(thresholds), *scope_params, *day_params, list(thresholds)],
    ):
        day = Counts(**dict(zip(ADDITIVE_FIELDS, figures, strict=True)))
        if latency is not None:
            day.latency_histogram = histogram_from_bytes(latency)
        if group_key in result.counts:
            result.counts[group_key].add(day)
        else:
            result.counts[group_key] = day
        if with_end_users:
            result.end_users.setdefault(group_key, []).append((registers, hashes))
    return result


def unique_end_users(*, tenant_id: int, bot_id: int | None, thresholds) -> dict[int, int]:
    """Exact distinct end users of the conversations started in each bucket, counted from every row.

    A conversation without an `end_user_id` counts as one user of its own.
    """
    scope, scope_params = _scope_sql(tenant_id=tenant_id, bot_id=bot_id)
    rows = fetch_all(
        f"SELECT width_bucket(created_at, %s::timestamptz[]) AS k, "
        f"count(DISTINCT end_user_id) FILTER (WHERE end_user_id <> '') + count(*) FILTER (WHERE end_user_id = '') "
        f"FROM {CONVERSATIONS} WHERE {scope} AND created_at >= %s AND created_at < %s GROUP BY k",
        [list(thresholds), *scope_params, thresholds[0], thresholds[-1]],
    )
    return {key: int(value) for key, value in rows}


# Lower case, one space between words, no punctuation or spaces at either end.
NORMALISED_QUESTION_SQL = (
    "regexp_replace(lower(regexp_replace(left(u.content, 1000), '\\s+', ' ', 'g')), "
    "'^[[:space:][:punct:]]+|[[:space:][:punct:]]+$', '', 'g')"
)


def unanswered_rows(*, tenant_id: int, bot_id: int | None, start, end, limit: int, offset: int) -> list[tuple]:
    """(latest wording, normalised text, times asked, last asked at, latest conversation public id) rows.

    Each fallback answer in [start, end) is paired with the user message just
    before it in its conversation (on the `(conversation, id)` index); the
    questions are grouped by normalised text, most frequent first.
    """
    scope = "a.tenant_id = %s" + (" AND a.bot_id = %s" if bot_id is not None else "")
    params = [tenant_id] + ([bot_id] if bot_id is not None else []) + [start, end, limit, offset]
    return fetch_all(
        f"""
        WITH asked AS (
            SELECT u.id, u.content, u.created_at, u.conversation_id, {NORMALISED_QUESTION_SQL} AS normalized
            FROM {MESSAGES} a
            CROSS JOIN LATERAL (
                SELECT id, content, created_at, conversation_id FROM {MESSAGES} u
                WHERE u.conversation_id = a.conversation_id AND u.id < a.id AND u.role = 'user'
                ORDER BY u.id DESC LIMIT 1
            ) u
            WHERE {scope} AND a.role = 'assistant' AND a.is_fallback
              AND a.created_at >= %s AND a.created_at < %s
        )
        SELECT (array_agg(asked.content ORDER BY asked.id DESC))[1], normalized, count(*),
               max(asked.created_at), (array_agg(c.public_id ORDER BY asked.id DESC))[1]
        FROM asked JOIN {CONVERSATIONS} c ON c.id = asked.conversation_id
        WHERE normalized <> ''
        GROUP BY normalized
        ORDER BY count(*) DESC, max(asked.created_at) DESC, normalized
        LIMIT %s OFFSET %s
        """,
        params,
    )
