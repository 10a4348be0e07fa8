"""The SQL behind analytics: the same aggregate queries serve the daily rollup and the live edges.

Every query is filtered by tenant first (and bot when given) so it runs on the
`(tenant, bot, created_at)` / `(tenant, created_at)` indexes. Rows are grouped
either by bot (the rollup of one day) or by time bucket, with `width_bucket`
over a sorted array of UTC boundaries computed in Python (see timewindows).

Definitions (the README's analytics section repeats them):
* answered from knowledge: an assistant message with non-empty `sources` that
  is not the bot's fallback answer;
* fallback: an assistant message with `is_fallback`;
* latency: assistant messages' `latency_ms` (see analytics.latency).
"""

from dataclasses import dataclass, field, fields
from datetime import date, datetime

from django.db import connection

from analytics.latency import BUCKET_SQL, histogram_merge
from analytics.models import DailyRollup
from conversations.models import Conversation, Lead, Message

MESSAGES = Message._meta.db_table
CONVERSATIONS = Conversation._meta.db_table
LEADS = Lead._meta.db_table
ROLLUPS = DailyRollup._meta.db_table


@dataclass
class Counts:
    """Additive figures for one group (a bot's day, or a time bucket)."""

    conversations: int = 0
    user_messages: int = 0
    assistant_messages: int = 0
    answered_from_knowledge: int = 0
    fallbacks: int = 0
    feedback_up: int = 0
    feedback_down: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    leads: int = 0
    latency_histogram: dict[int, int] = field(default_factory=dict)

    def add(self, other: "Counts") -> "Counts":
        for name in ADDITIVE_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency_histogram = histogram_merge([*self.latency_histogram.items(), *other.latency_histogram.items()])
        return self

    @property
    def messages(self) -> int:
        return self.user_messages + self.assistant_messages


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
        return result.setdefault(key, Counts())

    scope, scope_params = _scope_sql(tenant_id=tenant_id, bot_id=bot_id)

    key, key_params = group.key_sql("created_at")
    ranges, range_params = _ranges_sql("created_at", intervals)
    for row in fetch_all(
        f"SELECT {key} AS k, {MESSAGE_AGGREGATES} FROM {MESSAGES} WHERE {scope} AND {ranges} GROUP BY k",
        key_params + scope_params + range_params,
    ):
        target = counts(row[0])
        for name, value in zip(MESSAGE_FIELDS, row[1:], strict=True):
            setattr(target, name, int(value))

    if with_latency:
        for group_key, bucket, number in fetch_all(
            f"SELECT {key} AS k, {BUCKET_SQL} AS b, count(*) FROM {MESSAGES} "
            f"WHERE {scope} AND {ranges} AND role = 'assistant' AND latency_ms IS NOT NULL GROUP BY k, b",
            key_params + scope_params + range_params,
        ):
            counts(group_key).latency_histogram[int(bucket)] = int(number)

    for row in fetch_all(
        f"SELECT {key} AS k, count(*) FROM {CONVERSATIONS} WHERE {scope} AND {ranges} GROUP BY k",
        key_params + scope_params + range_params,
    ):
        counts(row[0]).conversations = int(row[1])

    lead_key, lead_key_params = group.key_sql("captured_at")
    lead_ranges, lead_range_params = _ranges_sql("captured_at", intervals)
    for row in fetch_all(
        f"SELECT {lead_key} AS k, count(*) FROM {LEADS} WHERE {scope} AND {lead_ranges} GROUP BY k",
        lead_key_params + scope_params + lead_range_params,
    ):
        counts(row[0]).leads = int(row[1])
    return result


def rollup_counts(
    *, tenant_id: int, bot_id: int | None, day_runs: list[tuple[date, date]], thresholds, with_latency: bool = True
) -> dict[int, Counts]:
    """Sum the daily rollups of the days in `day_runs` ([first, end) date pairs), per time bucket."""
    result: dict[int, Counts] = {}
    if not day_runs:
        return result
    scope, scope_params = _scope_sql(tenant_id=tenant_id, bot_id=bot_id)
    days, day_params = _ranges_sql("day", day_runs)
    key = "width_bucket((day::timestamp AT TIME ZONE 'UTC'), %s::timestamptz[])"
    key_params = [list(thresholds)]
    sums = ", ".join(f"coalesce(sum({name}), 0)" for name in ADDITIVE_FIELDS)
    for row in fetch_all(
        f"SELECT {key} AS k, {sums} FROM {ROLLUPS} WHERE {scope} AND {days} GROUP BY k",
        key_params + scope_params + day_params,
    ):
        result[row[0]] = Counts(**{name: int(value) for name, value in zip(ADDITIVE_FIELDS, row[1:], strict=True)})
    if with_latency:
        for group_key, bucket, number in fetch_all(
            f"SELECT {key} AS k, h.key::int AS b, sum(h.value::bigint) "
            f"FROM {ROLLUPS} CROSS JOIN LATERAL jsonb_each_text(latency_histogram) AS h "
            f"WHERE {scope} AND {days} GROUP BY k, b",
            key_params + scope_params + day_params,
        ):
            result.setdefault(group_key, Counts()).latency_histogram[int(bucket)] = int(number)
    return result


def unique_end_users(*, tenant_id: int, bot_id: int | None, thresholds) -> dict[int, int]:
    """Distinct end users of the conversations started in each bucket (always live: not additive).

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
