"""The delivery hot path in three statements: read an event with its subscribers, fan it out, record a result.

With the ORM the fan-out and the result would each be a transaction of three
or four statements, and the read two queries. At a few hundred deliveries a
second on a small machine, round trips to PostgreSQL and building ORM queries
are most of a delivery's cost (see `bench/webhooks.py`), so these are written
out; everything else uses the ORM.

The two writes commit asynchronously (`set_config('synchronous_commit',
'off', true)`, local to the statement's own transaction): they do not wait for
the WAL to reach the disk. Everything they write can be redone — a fan-out
lost in a crash of PostgreSQL leaves its event undispatched (the sweep
dispatches it again), a lost result leaves the delivery to be sent again,
which at-least-once delivery allows — and the events themselves are committed
durably by the code that emits them. On a busy disk that wait is most of a
delivery's cost. (Called inside a transaction, they make that transaction's
commit asynchronous too.)
"""

from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection

from webhooks.event_types import ALL_EVENTS
from webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint

DELIVERY = Delivery._meta.db_table
ATTEMPT = DeliveryAttempt._meta.db_table
EVENT = Event._meta.db_table
ENDPOINT = WebhookEndpoint._meta.db_table
# A CTE that makes the statement's transaction commit without waiting for the WAL flush.
ASYNCHRONOUS_COMMIT = "durability AS (SELECT set_config('synchronous_commit', 'off', true) AS value)"


def event_with_subscribers(*, event_id: int) -> tuple[Event | None, list[WebhookEndpoint]]:
    """The event if it is not dispatched yet (else None), with the enabled endpoints subscribed to its type."""
    event_fields = Event._meta.concrete_fields
    endpoint_fields = WebhookEndpoint._meta.concrete_fields
    columns = [f"e.{field.column}" for field in event_fields] + [f"w.{field.column}" for field in endpoint_fields]
    sql = f"""
        SELECT {", ".join(columns)}
        FROM {EVENT} e
        LEFT JOIN {ENDPOINT} w
            ON w.tenant_id = e.tenant_id AND w.enabled AND w.events && ARRAY[e.type, %(all)s]::varchar(64)[]
        WHERE e.id = %(event_id)s AND e.dispatched_at IS NULL
        ORDER BY w.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"event_id": event_id, "all": ALL_EVENTS})
        rows = cursor.fetchall()
    if not rows:
        return None, []
    split = len(event_fields)
    event = _instance(Event, event_fields, rows[0][:split])
    endpoints = [_instance(WebhookEndpoint, endpoint_fields, row[split:]) for row in rows if row[split] is not None]
    return event, endpoints


def _instance(model, fields, values):
    """A model instance from a row, through the fields' database converters (as a queryset would)."""
    converted = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(DEFAULT_DB_ALIAS, [field.attname for field in fields], converted)


def event_dispatch_insert(*, event_id: int, now: datetime, rows: list[dict]) -> list[tuple[int, int]] | None:
    """Mark the event dispatched and insert its deliveries, if no one has dispatched it yet.

    `rows` has one dict per delivery: `public_id`, `endpoint_id`, `status`,
    `attempts`, `claimed_until`, `queued_at`, `last_attempt_at`. Returns
    (delivery id, endpoint id) pairs, or None when the event was already
    dispatched (then nothing is written). A concurrent dispatcher's UPDATE
    waits for the row lock, then finds `dispatched_at` set and inserts nothing.
    """
    params: dict = {"event_id": event_id, "now": now}
    if not rows:
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH {ASYNCHRONOUS_COMMIT} UPDATE {EVENT} SET dispatched_at = %(now)s FROM durability "
                f"WHERE {EVENT}.id = %(event_id)s AND {EVENT}.dispatched_at IS NULL",
                params,
            )
            return [] if cursor.rowcount else None
    # Identifiers are ours; every value goes in as a parameter.
    values = []
    for index, row in enumerate(rows):
        names = [f"{name}_{index}" for name in row]
        params.update({f"{name}_{index}": value for name, value in row.items()})
        values.append("(" + ", ".join(f"%({name})s" for name in names) + ")")
    columns = list(rows[0])
    typed = {"claimed_until": "timestamptz", "queued_at": "timestamptz", "last_attempt_at": "timestamptz"}
    select_list = ", ".join(f"v.{name}::{typed[name]}" if name in typed else f"v.{name}" for name in columns)
    sql = f"""
        WITH {ASYNCHRONOUS_COMMIT},
        marked AS (
            UPDATE {EVENT} SET dispatched_at = %(now)s FROM durability
            WHERE {EVENT}.id = %(event_id)s AND {EVENT}.dispatched_at IS NULL
            RETURNING {EVENT}.id
        )
        INSERT INTO {DELIVERY} ({", ".join(columns)}, event_id, next_attempt_at, last_error, created_at)
        SELECT {select_list}, marked.id, %(now)s, '', %(now)s
        FROM marked CROSS JOIN (VALUES {", ".join(values)}) AS v ({", ".join(columns)})
        RETURNING id, endpoint_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchall()
    return inserted or None


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
