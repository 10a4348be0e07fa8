"""The worker process's sender threads: claimed attempts are sent and recorded here, several at a time.

A dispatcher hands each claimed attempt to a thread of this pool and goes on
fanning out new events, so a slow endpoint occupies one sender thread (for
at most the time-out), not the dispatcher. Each thread has its own database
connection (Django's are per thread) and records its own results. What a
thread was doing when its process died is recovered by the sweep (the lease
runs out), like any attempt of a killed worker. A warm shutdown of the
worker waits for the attempts in flight (`shutdown`).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)


class Senders:
    """A bounded pool of sender threads; `available()` tells the dispatcher how much more to claim."""

    def __init__(self, threads: int):
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook-sender")
        self._in_flight = 0
        self._changed = threading.Condition()

    def available(self) -> int:
        with self._changed:
            return self.threads - self._in_flight

    def wait_for_room(self, timeout: float) -> bool:
        """Block until a sender is free (True) or `timeout` passes (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight < self.threads, timeout)

    def submit(self, send, *args) -> None:
        with self._changed:
            self._in_flight += 1
        self._executor.submit(self._run, send, *args)

    def _run(self, send, *args) -> None:
        try:
            send(*args)
        except (OperationalError, InterfaceError):
            # The attempt stays `sending` until its lease runs out; then the sweep retries it.
            logger.exception("Webhook sender lost its database connection; the sweep will retry the attempt.")
            connection.close()
        except Exception:
            logger.exception("Webhook sender failed; the sweep will retry the attempt.")
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def shutdown(self) -> None:
        """Finish the attempts in flight, then close each thread's database connection."""
        barrier = threading.Barrier(self.threads)

        def close_connection():
            try:
                barrier.wait(timeout=30)  # holds every thread, so that each closes its own
            except threading.BrokenBarrierError:
                pass
            connection.close()

        for _ in range(self.threads):
            self._executor.submit(close_connection)
        self._executor.shutdown(wait=True)


_senders: Senders | None = None
_senders_pid: int | None = None
_senders_lock = threading.Lock()


def get_senders() -> Senders:
    """This process's sender pool (created on first use, again after a fork)."""
    global _senders, _senders_pid
    with _senders_lock:
        if _senders is None or _senders_pid != os.getpid():
            _senders = Senders(settings.WEBHOOK_SENDER_THREADS)
            _senders_pid = os.getpid()
        return _senders


def shutdown() -> None:
    """Wait for the attempts in flight in this process and close the pool (on the worker's warm shutdown)."""
    global _senders
    with _senders_lock:
        senders = _senders if _senders_pid == os.getpid() else None
        _senders = None
    if senders is not None:
        senders.shutdown()
