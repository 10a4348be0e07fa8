"""Delivery semantics against a real HTTP receiver on loopback (tasks run eagerly, in this process)."""

import json
import socket
import threading
import time
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from bothero.celery import app as celery_app
from bothero.testing.factories import DeliveryFactory
from webhooks import transport
from webhooks.attempt import delivery_attempt_first, webhook_delivery_send
from webhooks.dispatch import event_dispatch, events_dispatch
from webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from webhooks.services import event_emit, webhook_endpoint_rotate_secret
from webhooks.sweep import webhook_sweep
from webhooks.tests.conftest import make_endpoint
from webhooks.tests.receiver import Reply


@pytest.fixture
def emit(django_capture_on_commit_callbacks):
    """Emit an event as the other apps do (inside a transaction) and run what is queued after commit."""

    def emit(tenant, type="bot.created", data=None):
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                return event_emit(tenant=tenant, type=type, data=data or {"id": "bot_123", "object": "bot"})

    return emit


def the_delivery(endpoint) -> Delivery:
    return Delivery.objects.get(endpoint=endpoint)


def time_passes(delivery: Delivery) -> None:
    """Make a scheduled retry due now (instead of sleeping until it is)."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def sweep_and_run(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return webhook_sweep()


def test_the_signature_verifies_with_standardwebhooks_and_the_body_is_the_documented_shape(
    alice, alice_endpoint, receiver, emit
):
    event = emit(alice.tenant, "bot.created", {"id": "bot_123", "name": "Support"})
    [request] = receiver.wait_for(1)
    assert request.path == "/hooks"
    payload = Webhook(alice_endpoint.secret).verify(request.body, request.headers)
    assert payload == {
        "id": event.public_id,
        "type": "bot.created",
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {"id": "bot_123", "name": "Support"},
    }
    assert request.headers["webhook-id"] == event.public_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("BotHero-Webhooks/")
    delivery = the_delivery(alice_endpoint)
    assert delivery.status == "succeeded"
    assert delivery.attempts == 1
    assert delivery.last_response_code == 200
    assert delivery.last_duration_ms is not None
    event.refresh_from_db()
    assert event.dispatched_at is not None


def test_a_tampered_body_does_not_verify(alice, alice_endpoint, receiver, emit):
    emit(alice.tenant)
    [request] = receiver.wait_for(1)
    tampered = request.body.replace(b"bot_123", b"bot_999")
    with pytest.raises(WebhookVerificationError):
        Webhook(alice_endpoint.secret).verify(tampered, request.headers)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_success(alice, alice_endpoint, receiver, emit, status):
    receiver.reply_with(Reply(status=status, body=b"" if status == 204 else b"thanks"))
    emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    assert (delivery.status, delivery.last_response_code, delivery.next_attempt_at) == ("succeeded", status, None)


@pytest.mark.parametrize("status", [401, 403, 408, 409, 500, 502, 504])
def test_a_transient_failure_is_retried_on_the_schedule(alice, alice_endpoint, receiver, emit, status):
    receiver.reply_with(Reply(status=status, body=b"nope"))
    before = timezone.now()
    emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    assert delivery.status == "pending"
    assert delivery.last_response_code == status
    assert delivery.attempts == 1
    # First retry after 5 s (the test schedule is [5, 300, 1800], jitter off).
    assert before + timedelta(seconds=5) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=5)
    [attempt] = delivery.attempt_log.all()
    assert (attempt.outcome, attempt.response_status, attempt.response_body) == ("failed", status, "nope")
    alice_endpoint.refresh_from_db()
    assert alice_endpoint.failing_since is not None
    assert alice_endpoint.enabled is True


def test_a_failed_delivery_is_retried_with_the_same_webhook_id_and_shows_in_the_log(
    alice, alice_endpoint, receiver, emit, django_capture_on_commit_callbacks
):
    receiver.reply_with(Reply(status=500), Reply(status=503))
    event = emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    time_passes(delivery)
    assert sweep_and_run(django_capture_on_commit_callbacks)["queued"] == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("pending", 2, 503)
    # Second retry after 300 s.
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=290)
    time_passes(delivery)
    sweep_and_run(django_capture_on_commit_callbacks)
    requests = receiver.wait_for(3)
    assert {request.headers["webhook-id"] for request in requests} == {event.public_id}
    for request in requests:
        Webhook(alice_endpoint.secret).verify(request.body, request.headers)
    assert len({request.body for request in requests}) == 1

    listed = alice.client.get(f"/v1/webhooks/{alice_endpoint.public_id}/deliveries").json()["data"]
    assert [(d["status"], d["attempts"], d["last_response_code"]) for d in listed] == [("succeeded", 3, 200)]
    assert listed[0]["next_attempt_at"] is None
    detail = alice.client.get(f"/v1/webhooks/{alice_endpoint.public_id}/deliveries/{delivery.public_id}").json()
    assert [(a["number"], a["outcome"], a["response_status"]) for a in detail["attempt_log"]] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "succeeded", 200),
    ]
    alice_endpoint.refresh_from_db()
    assert alice_endpoint.failing_since is None


def test_a_retry_that_is_not_due_is_not_sent(alice, alice_endpoint, receiver, emit, django_capture_on_commit_callbacks):
    receiver.reply_with(Reply(status=500))
    emit(alice.tenant)
    assert sweep_and_run(django_capture_on_commit_callbacks)["queued"] == 0
    assert webhook_delivery_send(delivery_id=the_delivery(alice_endpoint).pk) is None
    assert len(receiver.requests) == 1


def test_retries_end_and_the_delivery_fails(alice, alice_endpoint, receiver, emit, django_capture_on_commit_callbacks):
    receiver.default = Reply(status=500)
    emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    for _retry in range(3):  # the test schedule has 3 retries
        time_passes(delivery)
        sweep_and_run(django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 4, None)
    assert delivery.completed_at is not None
    time_passes(delivery)
    assert sweep_and_run(django_capture_on_commit_callbacks)["queued"] == 0
    assert len(receiver.requests) == 4


def test_a_redirect_is_not_followed_and_counts_as_a_failure(alice, alice_endpoint, receiver, emit):
    receiver.reply_with(Reply(status=302, headers={"Location": f"{receiver.url}/elsewhere"}))
    emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    assert (delivery.status, delivery.last_response_code) == ("pending", 302)
    assert "not followed" in delivery.last_error
    time.sleep(0.2)
    assert [request.path for request in receiver.requests] == ["/hooks"]


def test_410_gone_disables_the_endpoint_and_records_webhook_disabled(alice, alice_endpoint, receiver, emit):
    ops = make_endpoint(alice.tenant, f"{receiver.url}/ops", events=["webhook.disabled"])
    receiver.reply_with(Reply(status=410))
    emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    assert (delivery.status, delivery.last_response_code, delivery.next_attempt_at) == ("failed", 410, None)
    alice_endpoint.refresh_from_db()
    assert (alice_endpoint.enabled, alice_endpoint.disabled_reason) == (False, "gone")
    disabled = Event.objects.get(type="webhook.disabled")
    assert disabled.data["id"] == alice_endpoint.public_id
    assert disabled.data["disabled_reason"] == "gone"
    # The record is itself an event: the tenant's other endpoint that subscribes to it is told.
    assert the_delivery(ops).event == disabled
    body = alice.client.get(f"/v1/webhooks/{alice_endpoint.public_id}").json()
    assert (body["enabled"], body["disabled_reason"]) == (False, "gone")


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("retry_after", "expected_seconds"),
    [
        (lambda now: "120", 120),
        (lambda now: format_datetime(now + timedelta(seconds=600), usegmt=True), 600),
        (lambda now: None, 5),  # no header: the schedule
    ],
)
def test_429_and_503_honour_retry_after(alice, alice_endpoint, receiver, emit, status, retry_after, expected_seconds):
    now = timezone.now()
    header = retry_after(now)
    receiver.reply_with(Reply(status=status, headers={"Retry-After": header} if header else {}))
    emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    assert delivery.status == "pending"
    wait = (delivery.next_attempt_at - now).total_seconds()
    assert expected_seconds - 2 <= wait <= expected_seconds + 3


def test_a_slow_receiver_times_out(alice, alice_endpoint, receiver, emit, private_urls):
    private_urls.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.reply_with(Reply(delay=2))
    started = time.monotonic()
    emit(alice.tenant)
    assert time.monotonic() - started < 1.5
    delivery = the_delivery(alice_endpoint)
    assert delivery.status == "pending"
    assert delivery.last_response_code is None
    assert delivery.last_error == "Timed out after 0.5 s."


@pytest.fixture
def trickling_server():
    """Answers every request one header byte every 0.1 s: each read is quick, the whole never ends."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                try:
                    for byte in b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 1000:
                        if stop.is_set():
                            break
                        conn.sendall(bytes([byte]))
                        time.sleep(0.1)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    server.close()


def test_the_time_out_bounds_the_whole_request_not_each_read(alice, private_urls, trickling_server, emit):
    private_urls.WEBHOOK_TIMEOUT_SECONDS = 1.0
    endpoint = make_endpoint(alice.tenant, trickling_server)
    started = time.monotonic()
    emit(alice.tenant)
    assert time.monotonic() - started < 2.0
    delivery = the_delivery(endpoint)
    assert (delivery.status, delivery.last_error) == ("pending", "Timed out after 1 s.")


def test_an_endpoint_failing_for_five_days_is_disabled_and_patch_resumes_it(
    alice, alice_endpoint, receiver, emit, django_capture_on_commit_callbacks
):
    WebhookEndpoint.objects.filter(pk=alice_endpoint.pk).update(
        failing_since=timezone.now() - timedelta(days=5, minutes=1)
    )
    receiver.reply_with(Reply(status=500))
    emit(alice.tenant)
    alice_endpoint.refresh_from_db()
    assert (alice_endpoint.enabled, alice_endpoint.disabled_reason) == (False, "failing")
    record = Event.objects.get(type="webhook.disabled")
    assert record.data["disabled_reason"] == "failing"
    assert record.data["failing_since"] is not None

    # While disabled, due retries wait and new events are not delivered.
    delivery = the_delivery(alice_endpoint)
    time_passes(delivery)
    assert sweep_and_run(django_capture_on_commit_callbacks)["queued"] == 0
    emit(alice.tenant, "bot.updated")
    assert Delivery.objects.filter(endpoint=alice_endpoint).count() == 1
    assert len(receiver.requests) == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.patch(f"/v1/webhooks/{alice_endpoint.public_id}", {"enabled": True}, format="json")
    assert response.status_code == 200
    assert response.json()["failing_since"] is None
    receiver.wait_for(2)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_an_endpoint_failing_for_less_than_five_days_stays_enabled(alice, alice_endpoint, receiver, emit):
    WebhookEndpoint.objects.filter(pk=alice_endpoint.pk).update(failing_since=timezone.now() - timedelta(days=4))
    receiver.reply_with(Reply(status=500))
    emit(alice.tenant)
    alice_endpoint.refresh_from_db()
    assert alice_endpoint.enabled is True
    assert not Event.objects.filter(type="webhook.disabled").exists()


def test_rotation_sends_both_signatures_for_a_day_and_both_verify(alice, alice_endpoint, receiver, emit):
    old_secret = alice_endpoint.secret
    endpoint = webhook_endpoint_rotate_secret(endpoint=alice_endpoint)
    emit(alice.tenant)
    [request] = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(endpoint.secret).verify(request.body, request.headers)
    Webhook(old_secret).verify(request.body, request.headers)

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    emit(alice.tenant, "bot.updated")
    request = receiver.wait_for(2)[1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(endpoint.secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(request.body, request.headers)


def test_events_are_dispatched_only_after_commit(alice, alice_endpoint, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            event = event_emit(tenant=alice.tenant, type="bot.created", data={})
    assert len(callbacks) == 1
    assert not Delivery.objects.exists()
    assert receiver.requests == []
    callbacks[0]()
    receiver.wait_for(1)
    event.refresh_from_db()
    assert event.dispatched_at is not None


def test_an_event_nobody_subscribes_to_is_settled_at_once(
    alice, receiver, private_urls, django_capture_on_commit_callbacks
):
    make_endpoint(alice.tenant, receiver.url, events=["lead.captured"])
    make_endpoint(alice.tenant, receiver.url, events=["*"], enabled=False)
    with django_capture_on_commit_callbacks() as callbacks:
        event = event_emit(tenant=alice.tenant, type="bot.created", data={})
    assert callbacks == []
    assert event.dispatched_at is not None


def test_dispatch_makes_one_delivery_per_subscribed_endpoint_even_when_run_twice(
    alice, charlie, receiver, private_urls
):
    wanted = [
        make_endpoint(alice.tenant, receiver.url, events=["bot.created"]),
        make_endpoint(alice.tenant, receiver.url, events=["*"]),
    ]
    make_endpoint(alice.tenant, receiver.url, events=["lead.captured"])
    make_endpoint(alice.tenant, receiver.url, events=["*"], enabled=False)
    make_endpoint(charlie.tenant, receiver.url, events=["*"])
    event = Event.objects.create(tenant=alice.tenant, type="bot.created", data={})
    first = event_dispatch(event_id=event.pk)
    second = event_dispatch(event_id=event.pk)
    assert len(first) == 2
    assert second == []
    assert sorted(Delivery.objects.values_list("endpoint_id", flat=True)) == sorted(e.pk for e in wanted)


def test_the_sweep_dispatches_an_event_whose_task_was_never_queued(
    alice, alice_endpoint, receiver, django_capture_on_commit_callbacks
):
    # As if the broker was down at commit: the event is in the outbox, undispatched.
    missed = Event.objects.create(tenant=alice.tenant, type="bot.created", data={"n": 1})
    Event.objects.filter(pk=missed.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    fresh = Event.objects.create(tenant=alice.tenant, type="bot.created", data={"n": 2})
    result = sweep_and_run(django_capture_on_commit_callbacks)
    assert result["dispatched"] == 1
    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == missed.public_id
    fresh.refresh_from_db()
    assert fresh.dispatched_at is None  # younger than the grace: its own task may still be coming


def test_the_sweep_recovers_an_attempt_whose_worker_died(
    alice, alice_endpoint, receiver, django_capture_on_commit_callbacks
):
    event = Event.objects.create(tenant=alice.tenant, type="bot.created", data={}, dispatched_at=timezone.now())
    started = timezone.now() - timedelta(minutes=2)
    delivery = DeliveryFactory(
        endpoint=alice_endpoint,
        event=event,
        status="sending",
        attempts=1,
        last_attempt_at=started,
        claimed_until=timezone.now() - timedelta(seconds=1),
    )
    assert sweep_and_run(django_capture_on_commit_callbacks)["recovered"] == 1
    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == event.public_id
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert [(a.number, a.outcome) for a in delivery.attempt_log.all()] == [(1, "interrupted"), (2, "succeeded")]


def test_an_attempt_whose_lease_has_not_run_out_is_left_alone(
    alice, alice_endpoint, django_capture_on_commit_callbacks
):
    event = Event.objects.create(tenant=alice.tenant, type="bot.created", data={}, dispatched_at=timezone.now())
    delivery = DeliveryFactory(
        endpoint=alice_endpoint,
        event=event,
        status="sending",
        attempts=1,
        claimed_until=timezone.now() + timedelta(seconds=30),
    )
    assert sweep_and_run(django_capture_on_commit_callbacks) == {"recovered": 0, "dispatched": 0, "queued": 0}
    delivery.refresh_from_db()
    assert delivery.status == "sending"


def test_a_manual_retry_sends_the_same_event_again(
    alice, alice_endpoint, receiver, emit, django_capture_on_commit_callbacks
):
    event = emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.post(f"/v1/webhooks/{alice_endpoint.public_id}/deliveries/{delivery.public_id}/retry")
    assert response.status_code == 202, response.content
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.public_id
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_an_address_blocked_at_delivery_time_is_never_contacted(alice, alice_endpoint, receiver, emit, private_urls):
    # The endpoint was accepted while private addresses were allowed; the rule is checked again when sending.
    private_urls.ALLOW_PRIVATE_URLS = False
    emit(alice.tenant)
    time.sleep(0.2)
    assert receiver.requests == []
    delivery = the_delivery(alice_endpoint)
    # Permanent: retrying a refused address through the whole schedule cannot succeed.
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert delivery.last_error.startswith("Not sent:")
    assert DeliveryAttempt.objects.get(delivery=delivery).outcome == "failed"


@pytest.mark.parametrize("status", [400, 404, 405, 413, 422])
def test_a_permanent_client_error_fails_the_delivery_at_once(alice, alice_endpoint, receiver, emit, status):
    receiver.reply_with(Reply(status=status, body=b"no such hook"))
    emit(alice.tenant)
    delivery = the_delivery(alice_endpoint)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert delivery.last_response_code == status
    alice_endpoint.refresh_from_db()
    # Only 410 disables the endpoint; a 404 fails this delivery, and the next event is tried again.
    assert alice_endpoint.enabled is True
    assert alice_endpoint.failing_since is not None


@pytest.mark.parametrize(
    ("result", "permanent"),
    [
        (transport.PostResult(status_code=404), True),
        (transport.PostResult(status_code=410), True),
        (transport.PostResult(status_code=429), False),
        (transport.PostResult(status_code=503), False),
        (transport.PostResult(error="Timed out after 10 s."), False),
        (transport.PostResult(error="Not sent: refused", blocked=True), True),
    ],
)
def test_permanent_is_a_property_of_the_transport_result(result, permanent):
    assert result.permanent is permanent


def test_the_beat_schedule_runs_the_sweep_on_the_webhooks_queue(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["webhooks-sweep"]
    assert entry["task"] in celery_app.tasks
    assert entry["options"]["queue"] == "webhooks"
    assert entry["schedule"] == settings.WEBHOOK_SWEEP_INTERVAL_SECONDS


def test_two_workers_never_send_the_same_attempt(transactional_db, receiver, settings):
    from conftest import make_actor

    settings.ALLOW_PRIVATE_URLS = True
    actor = make_actor()
    endpoint = make_endpoint(actor.tenant, receiver.url)
    event = Event.objects.create(tenant=actor.tenant, type="bot.created", data={}, dispatched_at=timezone.now())
    delivery = DeliveryFactory(endpoint=endpoint, event=event, next_attempt_at=timezone.now())
    receiver.reply_with(Reply(delay=0.3))
    start = threading.Barrier(4)
    results = []

    def worker():
        try:
            start.wait()
            results.append(webhook_delivery_send(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(result is not None for result in results) == 1
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    assert json.loads(receiver.requests[0].body)["id"] == event.public_id


def test_the_default_retry_schedule_is_the_documented_one():
    from django.conf import settings

    assert settings.WEBHOOK_RETRY_SCHEDULE == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert settings.WEBHOOK_RETRY_JITTER == 0.2
    assert settings.WEBHOOK_TIMEOUT_SECONDS == 10
    assert settings.WEBHOOK_DISABLE_AFTER_SECONDS == 5 * 24 * 3600


@pytest.mark.parametrize(("draw", "expected"), [("low", 300 * 0.8), ("high", 300 * 1.2)])
def test_retry_delays_are_jittered_within_bounds(settings, monkeypatch, draw, expected):
    from webhooks import attempt as delivery
    from webhooks.transport import PostResult

    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300]
    settings.WEBHOOK_RETRY_JITTER = 0.2
    monkeypatch.setattr(delivery.random, "uniform", lambda low, high: low if draw == "low" else high)
    delay = delivery.retry_delay(number=2, result=PostResult(status_code=500), now=timezone.now())
    assert delay == pytest.approx(expected)
    assert delivery.retry_delay(number=3, result=PostResult(status_code=500), now=timezone.now()) is None


def test_an_endpoint_deleted_while_its_request_is_in_flight_drops_the_result(transactional_db, receiver, settings):
    from conftest import make_actor

    settings.ALLOW_PRIVATE_URLS = True
    actor = make_actor()
    endpoint = make_endpoint(actor.tenant, receiver.url)
    event = Event.objects.create(tenant=actor.tenant, type="bot.created", data={}, dispatched_at=timezone.now())
    delivery = DeliveryFactory(endpoint=endpoint, event=event, next_attempt_at=timezone.now())
    receiver.reply_with(Reply(delay=0.5))
    results = []

    def send():
        try:
            results.append(webhook_delivery_send(delivery_id=delivery.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=send)
    thread.start()
    receiver.wait_for(1)
    endpoint.delete()
    thread.join(10)
    assert results == [None]
    assert not Delivery.objects.exists()
    assert not DeliveryAttempt.objects.exists()


def test_a_refused_connection_is_a_failure_that_is_retried(alice, private_urls, emit):
    from bothero.testing.processes import free_port

    endpoint = make_endpoint(alice.tenant, f"http://127.0.0.1:{free_port()}/hooks")
    emit(alice.tenant)
    delivery = the_delivery(endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("pending", 1, None)
    assert delivery.last_error.startswith("ConnectError")
    assert delivery.next_attempt_at > timezone.now()


def test_asynchronous_commit_stays_inside_the_delivery_statements(transactional_db, receiver, settings):
    from conftest import make_actor

    settings.ALLOW_PRIVATE_URLS = True
    actor = make_actor()
    make_endpoint(actor.tenant, receiver.url)
    event = Event.objects.create(tenant=actor.tenant, type="bot.created", data={"id": "bot_1"})
    assert len(event_dispatch(event_id=event.pk)) == 1
    assert Delivery.objects.get().status == "succeeded"
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_cookies_set_by_a_receiver_are_never_sent_back(alice, alice_endpoint, receiver, emit):
    receiver.reply_with(Reply(headers={"Set-Cookie": "session=abc; Path=/"}))
    emit(alice.tenant)
    emit(alice.tenant, "bot.updated")
    second = receiver.wait_for(2)[1]
    assert "cookie" not in second.headers


def test_a_batch_fans_each_event_out_to_its_own_tenants_endpoints_already_claimed(
    alice, charlie, receiver, private_urls
):
    alices = make_endpoint(alice.tenant, receiver.url, events=["bot.created"])
    charlies = make_endpoint(charlie.tenant, receiver.url, events=["*"])
    events = [
        Event.objects.create(tenant=alice.tenant, type="bot.created", data={"n": 1}),
        Event.objects.create(tenant=charlie.tenant, type="bot.created", data={"n": 2}),
        Event.objects.create(tenant=alice.tenant, type="lead.captured", data={"n": 3}),  # nobody subscribes
    ]
    handed = []
    marked, delivery_ids, full = events_dispatch(send=handed.append, limit=10)
    assert (marked, len(delivery_ids), full) == (3, 2, False)
    assert {(d.event.public_id, d.endpoint.pk) for d in handed} == {
        (events[0].public_id, alices.pk),
        (events[1].public_id, charlies.pk),
    }
    for delivery in Delivery.objects.filter(pk__in=delivery_ids):
        assert (delivery.status, delivery.attempts) == ("sending", 1)
        assert delivery.claimed_until > timezone.now()
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()
    assert events_dispatch(send=handed.append, limit=10) == (0, [], False)
    assert receiver.requests == []  # sending is the caller's `send`


def test_an_event_is_settled_at_once_when_only_another_tenant_subscribes(alice, charlie, receiver, private_urls):
    make_endpoint(charlie.tenant, receiver.url, events=["*"])
    with transaction.atomic():
        event = event_emit(tenant=alice.tenant, type="bot.created", data={})
    event.refresh_from_db()
    assert event.dispatched_at is not None


def test_a_first_attempt_that_waited_too_long_for_a_sender_is_handed_back_not_sent(
    alice, alice_endpoint, receiver, settings
):
    settings.WEBHOOK_CLAIM_GRACE_SECONDS = 30
    event = Event.objects.create(tenant=alice.tenant, type="bot.created", data={}, dispatched_at=timezone.now())
    claimed_at = timezone.now() - timedelta(seconds=20)
    delivery = DeliveryFactory(
        endpoint=alice_endpoint,
        event=event,
        status="sending",
        attempts=1,
        last_attempt_at=claimed_at,
        claimed_until=claimed_at + timedelta(seconds=40),
    )
    delivery.event, delivery.endpoint = event, alice_endpoint
    assert delivery_attempt_first(delivery) is None
    time.sleep(0.2)
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.claimed_until, delivery.queued_at) == (
        "pending",
        0,
        None,
        None,
    )
    assert delivery.next_attempt_at <= timezone.now()
    assert not DeliveryAttempt.objects.exists()


def test_the_dispatcher_in_a_worker_sends_every_batch_on_its_sender_threads_then_stops(
    transactional_db, receiver, settings
):
    from conftest import make_actor
    from webhooks import senders
    from webhooks.dispatch import events_dispatch_pending

    settings.ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_DISPATCH_BATCH_SIZE = 2
    settings.WEBHOOK_DISPATCH_LINGER_SECONDS = 0.05
    actor = make_actor()
    endpoint = make_endpoint(actor.tenant, receiver.url)
    events = [Event.objects.create(tenant=actor.tenant, type="bot.created", data={"n": n}) for n in range(5)]
    try:
        assert events_dispatch_pending(in_background=True) == 5
    finally:
        senders.shutdown()  # waits for the attempts in flight, closes the threads' connections
    requests = receiver.requests
    assert sorted(r.headers["webhook-id"] for r in requests) == sorted(e.public_id for e in events)
    assert Delivery.objects.filter(endpoint=endpoint, status="succeeded").count() == 5
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()
