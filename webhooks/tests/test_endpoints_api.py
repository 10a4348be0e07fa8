import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from bothero.testing.factories import DeliveryFactory
from webhooks.event_types import EVENT_TYPES
from webhooks.models import Delivery, Event, WebhookEndpoint
from webhooks.tests.conftest import make_endpoint


def create(actor, **body):
    return actor.client.post("/v1/webhooks", body, format="json")


def test_it_creates_an_endpoint_and_shows_the_secret_only_at_creation(alice, receiver, private_urls):
    response = create(alice, url=f"{receiver.url}/hooks", events=["message.created", "lead.captured"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("wh_")
    assert body["object"] == "webhook_endpoint"
    assert body["events"] == ["message.created", "lead.captured"]
    assert body["enabled"] is True
    assert body["disabled_reason"] is None
    assert body["secret"].startswith("whsec_")
    Webhook(body["secret"])  # a valid Standard Webhooks secret

    listed = alice.client.get("/v1/webhooks").json()
    assert [item["id"] for item in listed["data"]] == [body["id"]]
    assert "secret" not in listed["data"][0]
    fetched = alice.client.get(f"/v1/webhooks/{body['id']}").json()
    assert fetched["url"] == f"{receiver.url}/hooks"
    assert "secret" not in fetched


def test_it_rejects_an_unknown_event_type(alice, receiver, private_urls):
    response = create(alice, url=receiver.url, events=["message.created", "message.exploded"])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_event_type"
    assert error["param"] == "events"
    assert "message.exploded" in error["message"]
    assert not WebhookEndpoint.objects.exists()


def test_an_empty_event_list_is_refused(alice, receiver, private_urls):
    response = create(alice, url=receiver.url, events=[])
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "events"


def test_a_star_subscribes_to_everything(alice, receiver, private_urls):
    response = create(alice, url=receiver.url, events=["bot.created", "*"])
    assert response.status_code == 201
    assert response.json()["events"] == ["*"]


def test_it_lists_the_event_types(alice):
    response = alice.client.get("/v1/webhooks/event-types")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert {item["type"] for item in body["data"]} == set(EVENT_TYPES)
    assert {"message.created", "lead.captured", "document.ready", "bot.deleted"} <= set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://example.com/hooks", "url_scheme_not_allowed"),
        ("https://127.0.0.1/hooks", "url_host_not_allowed"),
        ("https://localhost/hooks", "url_host_not_allowed"),
        ("https://10.1.2.3/hooks", "url_host_not_allowed"),
        ("https://192.168.0.10/hooks", "url_host_not_allowed"),
        ("https://169.254.169.254/latest/meta-data", "url_host_not_allowed"),
        ("https://[::1]/hooks", "url_host_not_allowed"),
        ("https://[::ffff:127.0.0.1]/hooks", "url_host_not_allowed"),
        ("ftp://example.com/hooks", "url_scheme_not_allowed"),
    ],
)
def test_it_refuses_urls_that_are_not_public_https(alice, settings, url, code):
    settings.ALLOW_PRIVATE_URLS = False
    response = create(alice, url=url, events=["*"])
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["param"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_changing_the_url_to_a_blocked_address_is_refused(alice, settings):
    settings.ALLOW_PRIVATE_URLS = False
    endpoint = make_endpoint(alice.tenant, "https://93.184.215.14/hooks")
    response = alice.client.patch(f"/v1/webhooks/{endpoint.public_id}", {"url": "https://10.0.0.5/x"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_host_not_allowed"
    endpoint.refresh_from_db()
    assert endpoint.url == "https://93.184.215.14/hooks"


def test_a_tenant_has_a_limit_on_endpoints(alice, receiver, private_urls):
    private_urls.WEBHOOK_MAX_ENDPOINTS = 2
    assert create(alice, url=receiver.url, events=["*"]).status_code == 201
    assert create(alice, url=receiver.url, events=["*"]).status_code == 201
    response = create(alice, url=receiver.url, events=["*"])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "webhook_limit_reached"


def test_it_updates_events_and_description(alice, alice_endpoint):
    response = alice.client.patch(
        f"/v1/webhooks/{alice_endpoint.public_id}",
        {"events": ["bot.created"], "description": "CRM sync"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["events"] == ["bot.created"]
    assert response.json()["description"] == "CRM sync"
    response = alice.client.patch(f"/v1/webhooks/{alice_endpoint.public_id}", {"events": ["nope"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_event_type"


def test_disabling_and_enabling_by_patch(alice, alice_endpoint):
    url = f"/v1/webhooks/{alice_endpoint.public_id}"
    body = alice.client.patch(url, {"enabled": False}, format="json").json()
    assert body["enabled"] is False
    assert body["disabled_reason"] == "manual"
    assert body["disabled_at"] is not None
    body = alice.client.patch(url, {"enabled": True}, format="json").json()
    assert body["enabled"] is True
    assert body["disabled_reason"] is None
    assert body["disabled_at"] is None


def test_it_deletes_an_endpoint_with_its_deliveries(alice, alice_endpoint):
    event = Event.objects.create(tenant=alice.tenant, type="bot.created", data={})
    DeliveryFactory(endpoint=alice_endpoint, event=event, next_attempt_at=timezone.now())
    response = alice.client.delete(f"/v1/webhooks/{alice_endpoint.public_id}")
    assert response.status_code == 200
    assert response.json() == {"id": alice_endpoint.public_id, "object": "webhook_endpoint", "deleted": True}
    assert not WebhookEndpoint.objects.exists()
    assert not Delivery.objects.exists()
    assert alice.client.get(f"/v1/webhooks/{alice_endpoint.public_id}").status_code == 404


def test_rotating_returns_a_new_secret_and_keeps_the_old_one_for_a_day(alice, alice_endpoint):
    old = alice_endpoint.secret
    response = alice.client.post(f"/v1/webhooks/{alice_endpoint.public_id}/rotate-secret")
    assert response.status_code == 200, response.content
    new = response.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    alice_endpoint.refresh_from_db()
    assert alice_endpoint.signing_secrets(timezone.now()) == [new, old]
    in_25_hours = timezone.now() + timezone.timedelta(hours=25)
    assert alice_endpoint.signing_secrets(in_25_hours) == [new]


def test_the_test_endpoint_sends_a_signed_webhook_test_event(
    alice, alice_endpoint, receiver, django_capture_on_commit_callbacks
):
    alice_endpoint.events = ["bot.created"]  # a test is sent whatever the subscription
    alice_endpoint.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.post(f"/v1/webhooks/{alice_endpoint.public_id}/test")
    assert response.status_code == 202, response.content
    assert response.json()["id"].startswith("dlv_")
    assert response.json()["event_type"] == "webhook.test"
    [request] = receiver.wait_for(1)
    payload = Webhook(alice_endpoint.secret).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["webhook_id"] == alice_endpoint.public_id
    delivery = alice.client.get(f"/v1/webhooks/{alice_endpoint.public_id}/deliveries").json()["data"][0]
    assert delivery["status"] == "succeeded"
    assert delivery["last_response_code"] == 200


def test_a_disabled_endpoint_cannot_be_tested(alice, alice_endpoint):
    alice_endpoint.enabled = False
    alice_endpoint.save()
    response = alice.client.post(f"/v1/webhooks/{alice_endpoint.public_id}/test")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "webhook_disabled"


def test_the_deliveries_list_pages_newest_first_and_filters_by_status(alice, alice_endpoint):
    events = [Event.objects.create(tenant=alice.tenant, type="bot.created", data={"n": n}) for n in range(3)]
    deliveries = [
        DeliveryFactory(endpoint=alice_endpoint, event=event, status=status)
        for event, status in zip(events, ["succeeded", "failed", "succeeded"], strict=True)
    ]
    url = f"/v1/webhooks/{alice_endpoint.public_id}/deliveries"
    first = alice.client.get(url, {"limit": 2}).json()
    assert [item["id"] for item in first["data"]] == [deliveries[2].public_id, deliveries[1].public_id]
    assert first["has_more"] is True
    second = alice.client.get(url, {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["id"] for item in second["data"]] == [deliveries[0].public_id]
    assert second["has_more"] is False
    failed = alice.client.get(url, {"status": "failed"}).json()["data"]
    assert [item["id"] for item in failed] == [deliveries[1].public_id]
    assert failed[0]["event_id"] == events[1].public_id
    assert failed[0]["event_type"] == "bot.created"
    assert alice.client.get(url, {"status": "lost"}).json()["error"]["code"] == "invalid_status"


def test_retrying_a_delivery_in_flight_is_a_conflict(alice, alice_endpoint):
    event = Event.objects.create(tenant=alice.tenant, type="bot.created", data={})
    delivery = DeliveryFactory(endpoint=alice_endpoint, event=event, status="sending", attempts=1)
    response = alice.client.post(f"/v1/webhooks/{alice_endpoint.public_id}/deliveries/{delivery.public_id}/retry")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "delivery_in_progress"


def test_a_delivery_of_another_endpoint_is_not_found_under_this_one(alice, alice_endpoint, receiver):
    other = make_endpoint(alice.tenant, receiver.url)
    event = Event.objects.create(tenant=alice.tenant, type="bot.created", data={})
    delivery = DeliveryFactory(endpoint=other, event=event)
    url = f"/v1/webhooks/{alice_endpoint.public_id}/deliveries/{delivery.public_id}"
    response = alice.client.get(url)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "delivery_not_found"


def test_an_outsider_gets_404_on_every_webhook_endpoint(alice, alice_endpoint, charlie):
    event = Event.objects.create(tenant=alice.tenant, type="bot.created", data={})
    delivery = DeliveryFactory(endpoint=alice_endpoint, event=event, status="failed", attempts=1)
    base = f"/v1/webhooks/{alice_endpoint.public_id}"
    calls = [
        ("get", base, None),
        ("patch", base, {"description": "mine now"}),
        ("delete", base, None),
        ("post", f"{base}/rotate-secret", None),
        ("post", f"{base}/test", None),
        ("get", f"{base}/deliveries", None),
        ("get", f"{base}/deliveries/{delivery.public_id}", None),
        ("post", f"{base}/deliveries/{delivery.public_id}/retry", None),
    ]
    for method, url, body in calls:
        response = getattr(charlie.client, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.content)
        assert response.json()["error"]["code"] == "webhook_not_found", (method, url)
    assert charlie.client.get("/v1/webhooks").json()["data"] == []
    alice_endpoint.refresh_from_db()
    assert alice_endpoint.description == ""
    assert alice_endpoint.secret_rotated_at is None
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert not Delivery.objects.filter(event__type="webhook.test").exists()


def test_the_delivery_detail_shows_its_attempts(alice, alice_endpoint, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        delivery_id = alice.client.post(f"/v1/webhooks/{alice_endpoint.public_id}/test").json()["id"]
    body = alice.client.get(f"/v1/webhooks/{alice_endpoint.public_id}/deliveries/{delivery_id}").json()
    assert body["status"] == "succeeded"
    assert [(a["number"], a["outcome"], a["response_status"]) for a in body["attempt_log"]] == [(1, "succeeded", 200)]
    assert body["attempt_log"][0]["response_body"] == "ok"


def test_the_secret_is_not_kept_for_idempotent_replay(alice, receiver, private_urls):
    from bothero.models import IdempotencyRecord

    body = {"url": f"{receiver.url}/hooks", "events": ["*"]}
    first = alice.client.post("/v1/webhooks", body, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert first.status_code == 201
    again = alice.client.post("/v1/webhooks", body, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "idempotency_response_withheld"
    assert WebhookEndpoint.objects.count() == 1
    secret = first.json()["secret"]
    assert not any(secret.encode() in bytes(r.response_body or b"") for r in IdempotencyRecord.objects.all())


def test_a_test_send_is_replayed_under_the_same_idempotency_key(alice, alice_endpoint):
    url = f"/v1/webhooks/{alice_endpoint.public_id}/test"
    first = alice.client.post(url, HTTP_IDEMPOTENCY_KEY="test-1")
    again = alice.client.post(url, HTTP_IDEMPOTENCY_KEY="test-1")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize(
    ("url", "code"),
    [("http://example.com/hooks", "url_scheme_not_allowed"), ("https://127.0.0.1/hooks", "url_host_not_allowed")],
)
def test_in_development_the_refusal_names_the_switch_that_allows_it(alice, settings, url, code):
    settings.ALLOW_PRIVATE_URLS = False
    settings.DEBUG = True
    error = create(alice, url=url, events=["*"]).json()["error"]
    assert error["code"] == code
    assert "ALLOW_PRIVATE_URLS=true" in error["message"]

    settings.DEBUG = False  # production: the switch is not advertised
    error = create(alice, url=url, events=["*"]).json()["error"]
    assert error["code"] == code
    assert "ALLOW_PRIVATE_URLS" not in error["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fe80::1]/hooks",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_cloud_metadata_and_link_local_addresses_are_refused_even_with_private_urls_allowed(alice, private_urls, url):
    response = create(alice, url=url, events=["*"])
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "url_host_not_allowed"
    assert response.json()["error"]["param"] == "url"


def test_a_host_that_does_not_resolve_yet_may_be_saved(alice):
    # DNS is checked again before every delivery; a webhook may be registered before its DNS exists.
    response = create(alice, url="https://hooks.not-yet-live.invalid/bothero", events=["*"])
    assert response.status_code == 201, response.content
