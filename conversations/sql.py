"""The chat hot path's two writes, each in one statement.

A chat request writes twice: the customer's message (with the month's message
count for the quota, the conversation's counters and the events) and the
assistant's (with the conversation's counters, the month's token usage and
`message.created`). Through the ORM each was five to seven statements in a
transaction; in the web process a round trip to PostgreSQL costs about a
millisecond on a busy two-core machine, which made these writes a large part
of the platform's own latency (`bench/chat.py`). Here each write is one
statement of data-modifying CTEs, which PostgreSQL runs all or nothing; the
rows are built from model instances (`_insert_sql`), so the columns, defaults
and `auto_now_add` stay the models'. Everything else in the chat engine uses
the ORM.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model

from accounts.services import USAGE_FIRST, usage_increment_ctes
from conversations.events import conversation_event_data, message_event_data
from conversations.models import Conversation, Message
from webhooks.services import event_emit_ctes, event_inserted

CONVERSATION = Conversation._meta.db_table


def _insert_sql(instance: Model, *, computed: dict[str, str] | None = None) -> tuple[str, list]:
    """`INSERT ... RETURNING id` of one unsaved model instance, every concrete column but the primary key.

    Values are prepared as `Model.save()` would (field `pre_save`: defaults
    already on the instance, `auto_now_add`, generated public ids — set on the
    instance too). `computed` gives SQL expressions for some columns instead,
    such as the id of a row inserted by another CTE of the statement.
    """
    computed = computed or {}
    meta = instance._meta
    columns, values, params = [], [], []
    for field in meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        value = field.pre_save(instance, add=True)
        if field.column in computed:
            values.append(computed[field.column])
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(value, connection=connection))
    sql = f"INSERT INTO {meta.db_table} ({', '.join(columns)}) VALUES ({', '.join(values)}) RETURNING id"
    return sql, params


def _mark_saved(instance: Model, pk: int) -> None:
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias


def _conversation_update_sql(conversation: Conversation, changes: dict) -> tuple[str, list]:
    """One more message on the conversation (count, times), plus `changes` (field name → new value)."""
    assignments = ["message_count = message_count + 1", "last_message_at = %s", "updated_at = %s"]
    params = [conversation.last_message_at, conversation.updated_at]
    for name, value in changes.items():
        field = Conversation._meta.get_field(name)
        assignments.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection=connection))
    sql = f"UPDATE {CONVERSATION} SET {', '.join(assignments)} WHERE id = %s RETURNING message_count"
    return sql, [*params, conversation.pk]


def _with_events(ctes: list[tuple[str, str, list]], *, tenant_id: int, events: list[tuple[str, dict]], now):
    """Add the events to the statement, through the outbox's owner (`webhooks.services.event_emit_ctes`)."""
    event_ctes, dispatches = event_emit_ctes(tenant_id=tenant_id, events=events, now=now)
    ctes += event_ctes
    return dispatches


def _execute(ctes: list[tuple[str, str, list]], results: list[str]) -> tuple:
    sql = "WITH " + ", ".join(f"{name} AS ({cte})" for name, cte, _ in ctes) + " SELECT " + ", ".join(results)
    with connection.cursor() as cursor:
        cursor.execute(sql, [param for _, _, params in ctes for param in params])
        return cursor.fetchone()


def user_message_insert(
    *, message: Message, conversation: Conversation, conversation_changes: dict | None = None
) -> int:
    """Count the customer's `message` in the month's usage, store it with its conversation and their events.

    One statement. A new `conversation` (unsaved) is inserted by it, with
    `conversation.created`; an existing one gets one more message and
    `conversation_changes`; then `message.created`. Both instances are saved
    afterwards (ids set). Returns the month's message count, this one
    included: the caller checks the quota and, over it, rolls its transaction
    back (events included).
    """
    new = conversation.pk is None
    ctes = usage_increment_ctes(tenant_id=message.tenant_id, messages=1)
    if new:
        ctes.append(("conversation", *_insert_sql(conversation)))
        ctes.append(("message", *_insert_sql(message, computed={"conversation_id": "(SELECT id FROM conversation)"})))
        conversation_result = "(SELECT id FROM conversation)"
    else:
        ctes.append(("conversation", *_conversation_update_sql(conversation, conversation_changes or {})))
        ctes.append(("message", *_insert_sql(message)))
        conversation_result = "(SELECT message_count FROM conversation)"
    events = [("message.created", message_event_data(message))]
    if new:
        events.insert(0, ("conversation.created", conversation_event_data(conversation)))
    dispatches = _with_events(ctes, tenant_id=message.tenant_id, events=events, now=message.created_at)
    messages_this_month, _, message_id, conversation_value, *dispatched = _execute(
        ctes, [*USAGE_FIRST, "(SELECT id FROM message)", conversation_result, *dispatches]
    )
    if new:
        _mark_saved(conversation, conversation_value)
        message.conversation = conversation
    else:
        conversation.message_count = conversation_value
    _mark_saved(message, message_id)
    for dispatched_at in dispatched:
        event_inserted(dispatched_at=dispatched_at)
    return messages_this_month


def assistant_message_insert(*, message: Message, conversation: Conversation) -> None:
    """Store the assistant's `message`, count it on the conversation and its tokens in the month's usage, and emit
    `message.created`: one statement, needing no transaction around it. A `failed` answer (the model gave
    nothing) takes the customer's message back out of the month's message count."""
    ctes = [("message", *_insert_sql(message))]
    conversation.last_message_at = conversation.updated_at = message.created_at
    ctes.append(("conversation", *_conversation_update_sql(conversation, {})))
    ctes += usage_increment_ctes(
        tenant_id=message.tenant_id,
        # A question the model failed to answer at all gives its message back to the monthly quota.
        messages=-1 if message.status == Message.Status.FAILED else 0,
        prompt_tokens=message.prompt_tokens,
        completion_tokens=message.completion_tokens,
    )
    dispatches = _with_events(
        ctes,
        tenant_id=message.tenant_id,
        events=[("message.created", message_event_data(message))],
        now=message.created_at,
    )
    _, _, message_id, conversation.message_count, dispatched_at = _execute(
        ctes, [*USAGE_FIRST, "(SELECT id FROM message)", "(SELECT message_count FROM conversation)", *dispatches]
    )
    _mark_saved(message, message_id)
    event_inserted(dispatched_at=dispatched_at)
