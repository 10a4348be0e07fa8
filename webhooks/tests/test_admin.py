import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from bothero.testing.factories import DeliveryFactory
from webhooks.models import DeliveryAttempt, Event


@pytest.fixture
def staff_client(db, client):
    admin = get_user_model().objects.create_superuser("staff@bothero.test", "staff@bothero.test", "pw-staff-123")
    client.force_login(admin)
    return client


@pytest.fixture
def failed_delivery(alice, alice_endpoint):
    event = Event.objects.create(
        tenant=alice.tenant, type="bot.created", data={"id": "bot_1"}, dispatched_at=timezone.now()
    )
    delivery = DeliveryFactory(
        endpoint=alice_endpoint, event=event, status="failed", attempts=1, last_response_code=500
    )
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=1,
        outcome="failed",
        started_at=timezone.now(),
        duration_ms=12,
        url=alice_endpoint.url,
        response_status=500,
        response_body="upstream exploded",
    )
    return delivery


def test_staff_see_endpoints_without_their_secrets(staff_client, alice_endpoint):
    listing = staff_client.get("/admin/webhooks/webhookendpoint/")
    assert listing.status_code == 200
    assert alice_endpoint.public_id in listing.content.decode()
    page = staff_client.get(f"/admin/webhooks/webhookendpoint/{alice_endpoint.pk}/change/").content.decode()
    assert alice_endpoint.url in page
    assert alice_endpoint.secret not in page
    assert alice_endpoint.secret.removeprefix("whsec_") not in page


def test_a_delivery_page_shows_its_attempts(staff_client, failed_delivery):
    assert failed_delivery.public_id in staff_client.get("/admin/webhooks/delivery/").content.decode()
    page = staff_client.get(f"/admin/webhooks/delivery/{failed_delivery.pk}/change/").content.decode()
    assert "upstream exploded" in page
    assert failed_delivery.event.public_id in page


def test_the_redeliver_action_sends_the_event_again(
    staff_client, failed_delivery, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [failed_delivery.pk]}
        )
    assert response.status_code == 302
    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == failed_delivery.event.public_id
    failed_delivery.refresh_from_db()
    assert (failed_delivery.status, failed_delivery.attempts) == ("succeeded", 2)


def test_the_enable_action_resumes_a_disabled_endpoint(staff_client, alice_endpoint):
    alice_endpoint.enabled = False
    alice_endpoint.disabled_reason = "failing"
    alice_endpoint.save()
    staff_client.post(
        "/admin/webhooks/webhookendpoint/", {"action": "enable_endpoints", "_selected_action": [alice_endpoint.pk]}
    )
    alice_endpoint.refresh_from_db()
    assert (alice_endpoint.enabled, alice_endpoint.disabled_reason) == (True, "")


def test_the_outbox_is_listed(staff_client, failed_delivery):
    page = staff_client.get("/admin/webhooks/event/").content.decode()
    assert failed_delivery.event.public_id in page
