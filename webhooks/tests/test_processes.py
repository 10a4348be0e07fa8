"""Delivery through real processes: uvicorn serving the API, Celery workers on the `webhooks` queue, Redis.

These need REDIS_URL (the broker) and use `transactional_db` (the processes only see committed rows).
"""

import logging
import os
import signal
import time
from contextlib import contextmanager

import httpx
import pytest
from celery import Celery
from django.db import transaction
from standardwebhooks import Webhook

from bothero.celery import app as celery_app
from bothero.testing.factories import BotFactory
from bothero.testing.processes import celery_worker, free_port, uvicorn_server
from conftest import make_actor
from webhooks import queueing
from webhooks.models import Delivery, Event
from webhooks.services import event_emit
from webhooks.tasks import sweep
from webhooks.tests.conftest import make_endpoint
from webhooks.tests.receiver import Receiver, Reply

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a real broker: set REDIS_URL")
WORKER_ENV = {"ALLOW_PRIVATE_URLS": "true", "WEBHOOK_DISPATCH_GRACE_SECONDS": "0"}


@pytest.fixture
def through_the_broker():
    """Queue tasks on the real broker from this process (the suite runs them eagerly otherwise)."""
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queueing.QUEUE)
    celery_app.conf.task_always_eager = False
    # A dispatcher of an earlier test (killed, or handed over to a purged message) may have left its key.
    queueing.dispatcher_state_reset()
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = True


def wait_until(condition, timeout=30.0, message="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.1)


@contextmanager
def webhook_worker(**env):
    with celery_worker(queues=queueing.QUEUE, **{**WORKER_ENV, **env}) as worker:
        yield worker


def test_a_broker_failure_is_logged_and_not_raised(caplog):
    """What the request sees when Redis is down at commit: nothing but a warning in the log."""
    unreachable = Celery("unreachable", broker=f"redis://127.0.0.1:{free_port()}/0")
    unreachable.conf.broker_connection_timeout = 1

    @unreachable.task(name="webhooks.test_unreachable")
    def noop(event_id):
        raise AssertionError("must not run")

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="webhooks.queueing"):
        assert queueing._enqueue(noop, 123) is False
    assert time.monotonic() - started < 5
    assert "the webhook sweep will pick it up" in caplog.text


@pytest.mark.slow
@needs_redis
def test_a_worker_killed_mid_delivery_is_retried_not_lost(transactional_db, receiver, through_the_broker):
    actor = make_actor()
    endpoint = make_endpoint(actor.tenant, f"{receiver.url}/hooks", events=["bot.created"])
    receiver.reply_with(Reply(delay=60))  # the first attempt stalls until the worker is killed
    # Lease = time-out + grace: 3 s after the claim the attempt counts as lost.
    env = {"WEBHOOK_TIMEOUT_SECONDS": "3", "WEBHOOK_CLAIM_GRACE_SECONDS": "0"}
    with webhook_worker(**env) as worker:
        with transaction.atomic():
            event = event_emit(tenant=actor.tenant, type="bot.created", data={"id": "bot_1"})
        receiver.wait_for(1, timeout=30)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts) == ("sending", 1)

    wait_until(lambda: Delivery.objects.get(pk=delivery.pk).claimed_until.timestamp() < time.time(), 10, "lease")
    with webhook_worker(**env):
        sweep.apply_async(queue=queueing.QUEUE)
        first, second = receiver.wait_for(2, timeout=30)
        wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == "succeeded", 15, "success recorded")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.public_id
    Webhook(endpoint.secret).verify(second.body, second.headers)
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert [(a.number, a.outcome) for a in delivery.attempt_log.all()] == [(1, "interrupted"), (2, "succeeded")]


@pytest.mark.slow
@needs_redis
def test_an_event_emitted_while_redis_is_down_is_delivered_once_it_is_back(
    transactional_db, receiver, through_the_broker
):
    actor = make_actor()
    endpoint = make_endpoint(actor.tenant, f"{receiver.url}/hooks", events=["bot.created"])
    # The API's broker is a closed port: the after-commit enqueue fails.
    broker_down = f"redis://127.0.0.1:{free_port()}/0"
    with uvicorn_server(CELERY_BROKER_URL=broker_down, ALLOW_PRIVATE_URLS="true") as base_url:
        started = time.monotonic()
        response = httpx.post(
            f"{base_url}/v1/bots",
            json={"name": "Support"},
            headers={"Authorization": f"Bearer {actor.key}"},
            timeout=30,
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 201, response.text
    assert elapsed < 5
    event = Event.objects.get(tenant=actor.tenant, type="bot.created")
    assert event.data["id"] == response.json()["id"]
    assert event.dispatched_at is None
    assert receiver.requests == []

    with webhook_worker():  # Redis is back: the beat sweep (sent here directly) finds the event
        sweep.apply_async(queue=queueing.QUEUE)
        [request] = receiver.wait_for(1, timeout=30)
        wait_until(lambda: Delivery.objects.filter(endpoint=endpoint, status="succeeded").exists(), 15, "success")
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["id"] == event.public_id
    assert payload["data"]["id"] == response.json()["id"]


@pytest.mark.slow
@needs_redis
def test_chatting_with_a_bot_sends_signed_message_created_webhooks(transactional_db, receiver, through_the_broker):
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    auth = {"Authorization": f"Bearer {actor.key}"}
    with uvicorn_server(ALLOW_PRIVATE_URLS="true") as base_url, webhook_worker():
        created = httpx.post(
            f"{base_url}/v1/webhooks",
            json={"url": f"{receiver.url}/hooks", "events": ["message.created"]},
            headers=auth,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        reply = httpx.post(
            f"{base_url}/v1/chat/completions",
            json={"bot_id": bot.public_id, "message": "Hello, are you open on Sundays?"},
            headers=auth,
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        requests = receiver.wait_for(2, timeout=30)
        deliveries = httpx.get(f"{base_url}/v1/webhooks/{created.json()['id']}/deliveries", headers=auth).json()
    payloads = [Webhook(secret).verify(request.body, request.headers) for request in requests]
    assert {payload["type"] for payload in payloads} == {"message.created"}
    assert reply.json()["id"] in {payload["data"]["id"] for payload in payloads}
    assert len(deliveries["data"]) == 2


def queued_messages() -> int:
    return queueing._wake_client().llen(queueing.QUEUE)


@needs_redis
def test_events_emitted_together_queue_one_dispatcher_which_delivers_them_all(
    transactional_db, receiver, through_the_broker
):
    actor = make_actor()
    make_endpoint(actor.tenant, f"{receiver.url}/hooks", events=["bot.created"])
    with transaction.atomic():
        events = [event_emit(tenant=actor.tenant, type="bot.created", data={"n": n}) for n in range(20)]
    assert queued_messages() == 1  # one wake-up for twenty events, not twenty messages
    with webhook_worker():
        requests = receiver.wait_for(20, timeout=30)
        wait_until(lambda: Delivery.objects.filter(status="succeeded").count() == 20, 15, "successes recorded")
    assert sorted(r.headers["webhook-id"] for r in requests) == sorted(e.public_id for e in events)


@needs_redis
def test_a_dispatcher_that_stops_is_woken_again_and_never_misses_an_event(transactional_db, through_the_broker):
    actor = make_actor()
    make_endpoint(actor.tenant, "http://127.0.0.1:9/hooks", events=["bot.created"])

    def emit():
        with transaction.atomic():
            event_emit(tenant=actor.tenant, type="bot.created", data={})

    emit()
    assert queued_messages() == 1
    # Left behind by a dispatcher that dies, the key stops holding back wake-ups within seconds.
    assert 0 < queueing._wake_client().pttl(queueing.WAKE_KEY) <= queueing.WAKE_KEY_TTL_SECONDS * 1000
    emit()  # a dispatcher is queued: no second message, a token for it instead
    assert queued_messages() == 1
    # What the dispatcher sees between batches: the token, then (none left) the end of its wait.
    assert queueing.dispatcher_wait_for_events(0.1) is True
    assert queueing.dispatcher_wait_for_events(0.1) is False
    assert not queueing._wake_client().exists(queueing.WAKE_KEY)
    emit()  # the dispatcher has stopped waiting: the next event queues a new one
    assert queued_messages() == 2


@pytest.mark.slow
@needs_redis
def test_a_slow_endpoint_does_not_hold_up_deliveries_to_other_endpoints(transactional_db, through_the_broker):
    actor = make_actor()
    with Receiver(default=Reply(delay=5)) as slow, Receiver() as fast:
        make_endpoint(actor.tenant, f"{slow.url}/hooks", events=["*"])
        make_endpoint(actor.tenant, f"{fast.url}/hooks", events=["*"])
        with webhook_worker(WEBHOOK_TIMEOUT_SECONDS="8"):  # one worker process
            with transaction.atomic():
                event_emit(tenant=actor.tenant, type="bot.created", data={"n": 1})
            slow.wait_for(1, timeout=30)  # the slow endpoint's request is now in flight for 5 s
            emitted = time.monotonic()
            for n in (2, 3):
                with transaction.atomic():
                    event_emit(tenant=actor.tenant, type="bot.updated", data={"n": n})
            fast.wait_for(3, timeout=10)
            assert time.monotonic() - emitted < 2.5
            assert len(slow.wait_for(3, timeout=5)) == 3  # sent at once too, not one after the other
            assert Delivery.objects.filter(endpoint__url__startswith=slow.url, status="succeeded").count() == 0
            wait_until(lambda: Delivery.objects.filter(status="succeeded").count() == 6, 20, "all six succeeded")


@pytest.mark.slow
@needs_redis
def test_a_worker_shutting_down_hands_its_dispatcher_over_instead_of_lingering(
    transactional_db, receiver, through_the_broker
):
    actor = make_actor()
    make_endpoint(actor.tenant, f"{receiver.url}/hooks", events=["bot.created"])
    with webhook_worker(pool="solo", WEBHOOK_DISPATCH_LINGER_SECONDS="30") as worker:
        assert queued_messages() == 0
        # The solo pool (the recommended set-up), where the shutdown signal reaches the dispatcher.
        with transaction.atomic():
            event_emit(tenant=actor.tenant, type="bot.created", data={})
        receiver.wait_for(1, timeout=30)
        time.sleep(0.5)  # the dispatcher is now lingering for more events
        stopping = time.monotonic()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)
        assert time.monotonic() - stopping < 5  # not the 30 s linger
    assert queued_messages() == 1  # a dispatcher handed over for the next worker
    assert Delivery.objects.get().status == "succeeded"
