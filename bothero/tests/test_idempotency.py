"""Idempotency-Key on POST: replay, 422 on a different request, 409 while in progress, per tenant."""

import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from bothero.models import IdempotencyRecord
from bothero.testing.processes import uvicorn_server
from bots.models import Bot
from conftest import make_actor
from webhooks.models import Event


@pytest.mark.django_db
def test_a_repeat_with_the_same_key_replays_the_first_response_without_a_second_bot(alice):
    first = alice.client.post("/v1/bots", {"name": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    again = alice.client.post("/v1/bots", {"name": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again["X-Request-Id"] != first["X-Request-Id"]
    assert Bot.objects.filter(tenant=alice.tenant).count() == 1
    assert Event.objects.filter(tenant=alice.tenant, type="bot.created").count() == 1


@pytest.mark.django_db
def test_a_different_body_under_the_same_key_is_a_422_and_changes_nothing(alice):
    alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-2")
    response = alice.client.post("/v1/bots", {"name": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-2")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert list(Bot.objects.filter(tenant=alice.tenant).values_list("name", flat=True)) == ["A"]


@pytest.mark.django_db
def test_the_same_key_on_another_path_is_a_422(alice):
    alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-3")
    response = alice.client.post("/v1/auth/keys", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-3")
    assert response.status_code == 422


@pytest.mark.django_db
def test_two_tenants_with_the_same_key_stay_apart(alice, charlie):
    a = alice.client.post("/v1/bots", {"name": "Same"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    c = charlie.client.post("/v1/bots", {"name": "Same"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert a.status_code == c.status_code == 201
    assert "Idempotent-Replayed" not in c
    assert a.json()["id"] != c.json()["id"]
    assert Bot.objects.get(public_id=c.json()["id"]).tenant == charlie.tenant
    # And a different body under the shared key is not "reused" across tenants either.
    other = charlie.client.post("/v1/bots", {"name": "Else"}, format="json", HTTP_IDEMPOTENCY_KEY="shared-2")
    assert other.status_code == 201
    assert (
        alice.client.post("/v1/bots", {"name": "Mine"}, format="json", HTTP_IDEMPOTENCY_KEY="shared-2").status_code
        == 201
    )


@pytest.mark.django_db
def test_an_error_response_is_replayed_too(alice):
    first = alice.client.post("/v1/bots", {}, format="json", HTTP_IDEMPOTENCY_KEY="bad-1")
    assert first.status_code == 400
    again = alice.client.post("/v1/bots", {}, format="json", HTTP_IDEMPOTENCY_KEY="bad-1")
    assert again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


@pytest.mark.django_db
def test_a_key_over_255_characters_is_refused(alice):
    response = alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not Bot.objects.filter(tenant=alice.tenant).exists()


@pytest.mark.django_db
def test_a_claim_abandoned_by_a_dead_request_is_given_up_after_the_lock_timeout(alice, settings):
    alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="stuck")
    record = IdempotencyRecord.objects.get(tenant=alice.tenant, key="stuck")
    record.status = IdempotencyRecord.Status.IN_PROGRESS  # as if the process died mid-request
    record.save()
    assert alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="stuck").status_code == 409
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        created_at=timezone.now() - settings.IDEMPOTENCY_LOCK_TIMEOUT - timedelta(seconds=1)
    )
    assert alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="stuck").status_code == 201


@pytest.mark.django_db
def test_a_key_older_than_24_hours_is_forgotten(alice):
    alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    response = alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Bot.objects.filter(tenant=alice.tenant).count() == 2


@pytest.mark.slow
def test_a_concurrent_duplicate_is_a_409_while_the_first_is_still_running(transactional_db):
    """Two real requests against a real server: the first is held inside bot_create by a row lock
    that this test takes on the tenant row (bot_create locks it to check the plan's bot limit)."""
    actor = make_actor()
    headers = {"Authorization": f"Bearer {actor.key}", "Idempotency-Key": "concurrent-1"}
    results = {}
    with uvicorn_server() as base:

        def first_request():
            results["first"] = httpx.post(f"{base}/v1/bots", json={"name": "Slow"}, headers=headers, timeout=30)

        with transaction.atomic():
            # NO KEY UPDATE blocks bot_create's SELECT ... FOR UPDATE, not the inserts that reference the tenant.
            Tenant.objects.select_for_update(no_key=True).get(pk=actor.tenant.pk)
            thread = threading.Thread(target=first_request)
            thread.start()
            deadline = time.monotonic() + 20
            while not IdempotencyRecord.objects.filter(tenant=actor.tenant, key="concurrent-1").exists():
                assert time.monotonic() < deadline, "the first request never claimed the key"
                time.sleep(0.05)
            second = httpx.post(f"{base}/v1/bots", json={"name": "Slow"}, headers=headers, timeout=10)
            assert thread.is_alive(), "the first request should still be waiting for the lock"
        thread.join(30)
        third = httpx.post(f"{base}/v1/bots", json={"name": "Slow"}, headers=headers, timeout=10)

    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "idempotency_request_in_progress"
    first = results["first"]
    assert first.status_code == 201, first.text
    assert third.status_code == 201
    assert third.headers["Idempotent-Replayed"] == "true"
    assert third.json() == first.json()
    assert Bot.objects.filter(tenant=actor.tenant).count() == 1


@pytest.mark.django_db
def test_housekeeping_deletes_records_past_24_hours(alice):
    from bothero.tasks import purge_idempotency_records

    alice.client.post("/v1/bots", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="recent")
    alice.client.post("/v1/bots", {"name": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert purge_idempotency_records.delay().get() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
