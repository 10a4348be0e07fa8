"""The chat hot path's two writes, each in one statement.

A chat request writes twice: the customer's message (with the month's message
count for the quota and the conversation's counters) and the assistant's (with
the conversation's counters and the month's token usage). Through the ORM each
was four or five statements in a transaction; measured in the web process, a
round trip to PostgreSQL costs about a millisecond on a busy two-core machine,
which made the writes most of the platform's own latency (`bench/chat.py`).
Here each write is one statement of data-modifying CTEs, which PostgreSQL runs
all or nothing; the rows are built from model instances (`_insert_sql`), so the
columns, defaults and `auto_now_add` stay the models'. Everything else in the
chat engine uses the ORM.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model

from accounts.services import usage_increment_sql
from conversations.models import Conversation, Message

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


def user_message_insert(
    *, message: Message, conversation: Conversation, conversation_changes: dict | None = None
) -> int:
    """Count the customer's `message` in the month's usage and store it with its conversation: one statement.

    A new `conversation` (unsaved) is inserted by the statement; an existing
    one gets one more message and `conversation_changes`. Both instances are
    saved afterwards (ids set). Returns the month's message count, quota
    included: the caller decides, and rolls the transaction back when it is
    over the plan's limit.
    """
    usage_sql, usage_params = usage_increment_sql(tenant_id=message.tenant_id, messages=1)
    if conversation.pk is None:
        conversation_sql, conversation_params = _insert_sql(conversation)
        message_sql, message_params = _insert_sql(
            message, computed={"conversation_id": "(SELECT id FROM conversation)"}
        )
        result = "(SELECT id FROM conversation)"
    else:
        conversation_sql, conversation_params = _conversation_update_sql(conversation, conversation_changes or {})
        message_sql, message_params = _insert_sql(message)
        result = "(SELECT message_count FROM conversation)"
    sql = f"""
        WITH usage AS ({usage_sql}), conversation AS ({conversation_sql}), message AS ({message_sql})
        SELECT (SELECT messages FROM usage), (SELECT id FROM message), {result}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*usage_params, *conversation_params, *message_params])
        messages_this_month, message_id, conversation_result = cursor.fetchone()
    if conversation.pk is None:
        _mark_saved(conversation, conversation_result)
        message.conversation = conversation
    else:
        conversation.message_count = conversation_result
    _mark_saved(message, message_id)
    return messages_this_month


def assistant_message_insert(*, message: Message, conversation: Conversation) -> None:
    """Store the assistant's `message`, count it on the conversation and its tokens in the month's usage."""
    message_sql, message_params = _insert_sql(message)
    conversation.last_message_at = conversation.updated_at = message.created_at
    conversation_sql, conversation_params = _conversation_update_sql(conversation, {})
    usage_sql, usage_params = usage_increment_sql(
        tenant_id=message.tenant_id, prompt_tokens=message.prompt_tokens, completion_tokens=message.completion_tokens
    )
    sql = f"""
        WITH message AS ({message_sql}), conversation AS ({conversation_sql}), usage AS ({usage_sql})
        SELECT (SELECT id FROM message), (SELECT message_count FROM conversation)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*message_params, *conversation_params, *usage_params])
        message_id, conversation.message_count = cursor.fetchone()
    _mark_saved(message, message_id)
