"""The end of a streamed answer: a database error while storing it, and the connection while the model answers."""

import threading
import time
from contextlib import aclosing

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection

from accounts.models import UsageCounter, UsageDay
from bothero.testing.factories import MessageFactory
from conversations import services, streaming
from conversations.models import Conversation, Message

from .conftest import parse_sse


def start(alice, bot, message="How long does a refund take?"):
    return services.chat_reply_start(tenant=alice.tenant, bot_id=bot.public_id, user_message=message)


def taken_answer_id(prepared):
    """A row that already holds the answer's public id: storing the answer fails in PostgreSQL (unique)."""
    MessageFactory(
        public_id=prepared.assistant_id,
        tenant=prepared.tenant,
        bot=prepared.bot,
        conversation=prepared.conversation,
        role="assistant",
    )


def test_a_database_error_storing_the_answer_ends_the_stream_with_an_error_event(alice, faq_bot, openai_provider):
    openai_provider.reply = "Refunds are paid within 5 business days."
    prepared = start(alice, faq_bot)
    taken_answer_id(prepared)
    body = b"".join(streaming.buffered(lambda: streaming.native_sse(prepared, request_id="req_store")))
    events = parse_sse(body)
    names = [name for name, _ in events]
    assert names[0] == "message.start"
    assert "message.delta" in names
    # Not a body that just ends: the documented error event, in the envelope, with the request id.
    assert names[-1] == "error"
    assert "message.completed" not in names
    error = events[-1][1]["error"]
    assert error["code"] == "internal_error"
    assert error["type"] == "api_error"
    assert error["request_id"] == "req_store"


def test_the_openai_shape_gets_an_error_frame_and_no_done(alice, faq_bot, openai_provider):
    prepared = start(alice, faq_bot)
    taken_answer_id(prepared)
    body = b"".join(streaming.buffered(lambda: streaming.openai_sse(prepared, include_usage=False)))
    assert b"data: [DONE]" not in body
    assert parse_sse(body)[-1][1]["error"]["code"] == "internal_error"


@pytest.mark.django_db(transaction=True)
def test_the_stream_holds_no_connection_while_the_model_answers(alice, faq_bot, openai_provider, settings):
    settings.DB_POOL = True  # as in the web process: the connection goes back to the pool
    openai_provider.reply = "Refunds are paid within 5 business days."
    prepared = start(alice, faq_bot)
    assert connection.connection is not None

    async def connection_during_the_answer():
        held = []
        async with aclosing(streaming.reply_events(prepared)) as events:
            async for event in events:
                if event.type == "message.delta":
                    held.append(await sync_to_async(lambda: connection.connection is not None)())
                last = event.type
        return held, last

    held, last = async_to_sync(connection_during_the_answer)()
    assert held
    assert not any(held)
    # Storing the answer takes a connection again.
    assert last == "message.completed"
    assert prepared.conversation.messages.filter(public_id=prepared.assistant_id).exists()


@pytest.mark.django_db(transaction=True)
def test_storing_the_answer_takes_the_months_usage_row_before_todays_and_the_conversations(alice, faq_bot):
    """The lock order of the customer's message (month, then day, then the rest): the deadlock seen under
    bench/load.py."""
    prepared = start(alice, faq_bot)  # the tenant's month and day rows exist from here
    month, day = UsageCounter._meta.db_table, UsageDay._meta.db_table
    conversations = Conversation._meta.db_table
    # Another transaction holds the month's row, as a customer's message does until its transaction commits.
    holder = connection.get_new_connection(connection.get_connection_params())
    outcome = {}

    def store():
        try:
            outcome["message"] = services.reply_finish(
                prepared=prepared, content="Five days.", usage=None, status=Message.Status.COMPLETE, latency_ms=1
            )
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    try:
        with holder.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {month} WHERE tenant_id = %s FOR UPDATE", [alice.tenant.pk])
            storing = threading.Thread(target=store)
            storing.start()
            waiting = False
            for _ in range(100):  # until the answer's statement waits for the month's row
                with connection.cursor() as watch:
                    watch.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                        ["%INSERT INTO " + Message._meta.db_table + "%"],
                    )
                    waiting = watch.fetchone()[0] > 0
                if waiting:
                    break
                time.sleep(0.05)
            assert waiting
            # It must hold nothing of today's row meanwhile, or this waits for it (and PostgreSQL finds a deadlock).
            cursor.execute("SET LOCAL lock_timeout = '3s'")
            cursor.execute(f"UPDATE {day} SET api_requests = api_requests + 1 WHERE tenant_id = %s", [alice.tenant.pk])
            # Nor the conversation's row, which the customer's next message in it updates after taking the month's.
            cursor.execute(
                f"UPDATE {conversations} SET updated_at = updated_at WHERE id = %s", [prepared.conversation.pk]
            )
        holder.commit()
    finally:
        holder.close()
        storing.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["message"].status == Message.Status.COMPLETE
