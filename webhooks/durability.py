"""Asynchronous commit for delivery bookkeeping.

Everything the webhooks tasks write can be redone: a dispatch lost in a
database crash leaves its event undispatched (the sweep dispatches it again),
and a lost claim or result leaves the delivery to be sent again, which
at-least-once delivery allows. So these transactions need not wait for the
WAL to reach the disk (`synchronous_commit = off`: a crash of PostgreSQL
itself may forget the last fraction of a second of them, never corrupt
anything). That wait is most of a delivery's cost on a busy disk.

The events themselves are committed by the code that emits them, durably as
ever; this only applies inside the webhooks tasks.
"""

from contextlib import contextmanager

from django.db import DatabaseError, connection


@contextmanager
def asynchronous_commit():
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except DatabaseError:
            pass  # a broken connection is discarded by Django after the task anyway
