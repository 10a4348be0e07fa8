"""The delivery hot path in a few statements: insert an event, read a batch of events with their subscribers,
fan the batch out, record a result.

With the ORM the emit would be two queries, the fan-out and the result each a
transaction of three or four statements, and the read two queries. At a few
hundred deliveries a second on a small machine, round trips to PostgreSQL and
building ORM queries are a large part of a delivery's cost (see
`bench/webhooks.py`), so these are written out; everything else uses the ORM.

The fan-out and the result commit asynchronously (`set_config('synchronous_commit',
'off', true)`, local to the statement's own transaction): they do not wait for
the WAL to reach the disk. Everything they write can be redone — a fan-out
lost in a crash of PostgreSQL leaves its events undispatched (the sweep
dispatches them again), a lost result leaves the delivery to be sent again,
which at-least-once delivery allows — and the events themselves are committed
durably by the code that emits them (`event_insert` runs in the caller's
transaction and leaves its commit alone). On a busy disk that wait is most of
a delivery's cost. (Called inside a transaction, the two make that
transaction's commit asynchronous too.)
"""

from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection

from bothero.ids import new_public_id
from webhooks.event_types import ALL_EVENTS
from webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint

DELIVERY = Delivery._meta.db_table
ATTEMPT = DeliveryAttempt._meta.db_table
EVENT = Event._meta.db_table
ENDPOINT = WebhookEndpoint._meta.db_table
# A CTE that makes the statement's transaction commit without waiting for the WAL flush.
ASYNCHRONOUS_COMMIT = "durability AS (SELECT set_config('synchronous_commit', 'off', true) AS value)"


def event_insert(*, tenant_id: int, type: str, data, now: datetime) -> Event:
    """Insert an event in the caller's transaction; settled at once (`dispatched_at`) if nobody subscribes to it.

    One statement: the subscription check is a subquery of the INSERT.
    """
    public_id = new_public_id("evt")
    sql, params = event_insert_sql(public_id=public_id, tenant_id=tenant_id, type=type, data=data, now=now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        event_id, dispatched_at = cursor.fetchone()
    return Event.from_db(
        DEFAULT_DB_ALIAS,
        ["id", "public_id", "tenant_id", "type", "data", "created_at", "dispatched_at"],
        [event_id, public_id, tenant_id, type, data, now, dispatched_at],
    )


def event_insert_sql(*, public_id: str, tenant_id: int, type: str, data, now: datetime) -> tuple[str, list]:
    """`event_insert`'s statement (`RETURNING id, dispatched_at`), positional parameters: also a CTE of a
    caller's statement that writes the change and its event at once (`conversations.sql`)."""
    sql = f"""
        INSERT INTO {EVENT} (public_id, tenant_id, type, data, created_at, dispatched_at)
        VALUES (%s, %s, %s, %s, %s,
            CASE WHEN EXISTS (
                SELECT 1 FROM {ENDPOINT} w
                WHERE w.tenant_id = %s AND w.enabled AND w.events && ARRAY[%s, %s]::varchar(64)[]
            ) THEN NULL ELSE %s::timestamptz END)
        RETURNING id, dispatched_at
    """
    data = Event._meta.get_field("data").get_db_prep_save(data, connection)
    return sql, [public_id, tenant_id, type, data, now, tenant_id, type, ALL_EVENTS, now]


def events_undispatched_with_subscribers(
    *, limit: int, event_ids: list[int] | None = None, created_before: datetime | None = None
) -> list[tuple[Event, list[WebhookEndpoint]]]:
    """Up to `limit` undispatched events, oldest first, each with the enabled endpoints subscribed to its type.

    Read without locks; `events_dispatch_insert` claims them.
    """
    event_fields = Event._meta.concrete_fields
    endpoint_fields = WebhookEndpoint._meta.concrete_fields
    columns = [f"e.{field.column}" for field in event_fields] + [f"w.{field.column}" for field in endpoint_fields]
    conditions = ["dispatched_at IS NULL"]
    params: dict = {"limit": limit, "all": ALL_EVENTS}
    if event_ids is not None:
        conditions.append("id = ANY(%(event_ids)s)")
        params["event_ids"] = event_ids
    if created_before is not None:
        conditions.append("created_at <= %(created_before)s")
        params["created_before"] = created_before
    sql = f"""
        SELECT {", ".join(columns)}
        FROM (SELECT * FROM {EVENT} WHERE {" AND ".join(conditions)} ORDER BY id LIMIT %(limit)s) e
        LEFT JOIN {ENDPOINT} w
            ON w.tenant_id = e.tenant_id AND w.enabled AND w.events && ARRAY[e.type, %(all)s]::varchar(64)[]
        ORDER BY e.id, w.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    split = len(event_fields)
    events: dict[int, tuple[Event, list[WebhookEndpoint]]] = {}
    for row in rows:
        if row[0] not in events:
            events[row[0]] = (_instance(Event, event_fields, row[:split]), [])
        if row[split] is not None:
            events[row[0]][1].append(_instance(WebhookEndpoint, endpoint_fields, row[split:]))
    return list(events.values())


def _instance(model, fields, values):
    """A model instance from a row, through the fields' database converters (as a queryset would)."""
    converted = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(DEFAULT_DB_ALIAS, [field.attname for field in fields], converted)


def events_dispatch_insert(
    *, event_ids: list[int], now: datetime, lease: datetime, deliveries: list[tuple[str, int, int]]
) -> tuple[int, list[tuple[int, int, int]]]:
    """Mark these events dispatched and insert their deliveries, already claimed for their first attempt.

    `deliveries` are (public id, endpoint id, event id). An event another
    dispatcher holds or has dispatched is skipped (SKIP LOCKED), with its
    deliveries. Returns (how many events were marked here, the inserted
    (delivery id, endpoint id, event id)). Raises IntegrityError if an
    endpoint was deleted since it was read.
    """
    sql = f"""
        WITH {ASYNCHRONOUS_COMMIT},
        marked AS (
            UPDATE {EVENT} SET dispatched_at = %(now)s FROM durability
            WHERE {EVENT}.id IN (
                SELECT id FROM {EVENT} WHERE id = ANY(%(event_ids)s) AND dispatched_at IS NULL
                FOR UPDATE SKIP LOCKED
            )
            RETURNING {EVENT}.id
        ),
        inserted AS (
            INSERT INTO {DELIVERY} (public_id, endpoint_id, event_id, status, attempts, next_attempt_at,
                claimed_until, last_attempt_at, last_error, created_at)
            SELECT v.public_id, v.endpoint_id, v.event_id, %(sending)s, 1, %(now)s, %(lease)s, %(now)s, '', %(now)s
            FROM unnest(%(public_ids)s::varchar[], %(endpoint_ids)s::bigint[], %(delivery_event_ids)s::bigint[])
                AS v (public_id, endpoint_id, event_id)
            JOIN marked ON marked.id = v.event_id
            RETURNING id, endpoint_id, event_id
        )
        SELECT id, endpoint_id, event_id FROM inserted
        UNION ALL SELECT NULL, NULL, count(*) FROM marked
    """
    params = {
        "now": now,
        "lease": lease,
        "event_ids": event_ids,
        "sending": Delivery.Status.SENDING,
        "public_ids": [public_id for public_id, _, _ in deliveries],
        "endpoint_ids": [endpoint_id for _, endpoint_id, _ in deliveries],
        "delivery_event_ids": [event_id for _, _, event_id in deliveries],
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    *inserted, (_, _, marked) = rows
    return marked, [tuple(row) for row in inserted]


def delivery_attempt_record(*, delivery_id: int, number: int, changes: dict, attempt: dict) -> bool:
    """Log attempt `number` (replacing an `interrupted` row for it) and apply `changes` to the delivery.

    The delivery changes only while that attempt still holds the claim
    (`sending`, same number); the attempt is logged either way. Returns
    whether the delivery was updated. Raises IntegrityError if the delivery
    no longer exists.
    """
    # Identifiers are ours; every value goes in as a parameter.
    params = {f"set_{name}": value for name, value in changes.items()}
    params.update({f"attempt_{name}": value for name, value in attempt.items()})
    params.update({"delivery_id": delivery_id, "number": number, "sending": Delivery.Status.SENDING})
    assignments = ", ".join(f"{name} = %(set_{name})s" for name in changes)
    attempt_columns = ["delivery_id", "number", *attempt]
    attempt_values = ["%(delivery_id)s", "%(number)s", *(f"%(attempt_{name})s" for name in attempt)]
    replaced = ", ".join(f"{name} = EXCLUDED.{name}" for name in attempt if name != "started_at")
    sql = f"""
        WITH {ASYNCHRONOUS_COMMIT},
        updated AS (
            UPDATE {DELIVERY} SET {assignments} FROM durability
            WHERE {DELIVERY}.id = %(delivery_id)s AND {DELIVERY}.status = %(sending)s
                AND {DELIVERY}.attempts = %(number)s
            RETURNING {DELIVERY}.id
        )
        INSERT INTO {ATTEMPT} ({", ".join(attempt_columns)})
        SELECT {", ".join(attempt_values)} FROM durability
        ON CONFLICT (delivery_id, number) DO UPDATE SET {replaced}
        RETURNING (SELECT count(*) FROM updated)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] > 0
