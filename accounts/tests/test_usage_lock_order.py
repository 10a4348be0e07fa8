"""The month's and the day's usage rows are locked in one order by every statement that writes them.

The customer's message counts usage inside the chat's transaction, which the
quota check keeps open; a statement whose usage CTEs no result reads runs them
at the end, in an order PostgreSQL does not promise (in practice the day's
first). Two chats of one tenant then deadlocked (one holding the month's row
and waiting for the day's, the other the reverse) and answered 503. Every
statement selects `USAGE_FIRST` before anything else, so it takes the month's
row first; `conversations/tests/test_streaming_store.py` checks the answer's
statement, this file the statement of `usage_increment` (every API request).
"""

import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction

from accounts.services import usage_increment
from bothero.testing.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _count_an_api_request(tenant) -> None:
    try:
        usage_increment(tenant=tenant, api_requests=1)
    finally:
        connections.close_all()


def _wait_until_blocked_on_a_lock(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is read once per transaction otherwise
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                ["%accounts_usage%"],
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the other statement never waited for a lock")


def test_counting_usage_takes_the_month_before_the_day():
    tenant = TenantFactory()
    usage_increment(tenant=tenant, messages=1)  # both rows exist

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM accounts_usageday WHERE tenant_id = %s FOR UPDATE", [tenant.pk])
        other = threading.Thread(target=_count_an_api_request, args=(tenant,))
        other.start()
        try:
            _wait_until_blocked_on_a_lock()
            # Holding the day's row, we may not get the month's: the other statement took it first and waits
            # for the day's row behind us. Had it waited for the day's row first, the month's would be free.
            with pytest.raises(OperationalError, match="could not obtain lock"):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT 1 FROM accounts_usagecounter WHERE tenant_id = %s FOR UPDATE NOWAIT", [tenant.pk]
                    )
        finally:
            transaction.set_rollback(True)
    other.join(timeout=10)
    assert not other.is_alive()
