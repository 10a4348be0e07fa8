"""Per-tenant rate limits from the plan: headers on every response, 429 after the limit, shared by processes."""

import os
import time

import httpx
import pytest

from accounts.models import UsageCounter
from bothero.testing.factories import PlanFactory
from bothero.testing.helpers import wait_for_window_room
from bothero.testing.processes import uvicorn_server
from conftest import make_actor


def limits(response) -> tuple[int, int, int]:
    return (
        int(response.headers["X-RateLimit-Limit"]),
        int(response.headers["X-RateLimit-Remaining"]),
        int(response.headers["X-RateLimit-Reset"]),
    )


@pytest.mark.django_db
def test_every_authenticated_response_carries_the_rate_limit_headers(alice, alice_bot, charlie):
    wait_for_window_room(10)
    responses = [
        alice.client.get("/v1/bots"),
        alice.client.get(f"/v1/bots/{alice_bot.public_id}"),
        alice.client.post("/v1/bots", {}, format="json"),  # 400
        charlie.client.get(f"/v1/bots/{alice_bot.public_id}"),  # 404, charlie's own budget
        alice.client.get("/v1/bots?limit=0"),  # 400
    ]
    assert [r.status_code for r in responses] == [200, 200, 400, 404, 400]
    alice_limits = [limits(r) for r in responses if r is not responses[3]]
    assert [remaining for _, remaining, _ in alice_limits] == [599, 598, 597, 596]
    assert all(limit == 600 and 1 <= reset <= 60 for limit, _, reset in alice_limits)
    assert limits(responses[3])[:2] == (600, 599)


@pytest.mark.django_db
def test_the_call_after_the_limit_is_refused_until_the_window_resets():
    actor = make_actor(plan_obj=PlanFactory(requests_per_minute=3))
    other = make_actor(plan_obj=actor.tenant.plan)
    wait_for_window_room(10)
    remaining = [limits(actor.client.get("/v1/bots"))[1] for _ in range(3)]
    assert remaining == [2, 1, 0]
    refused = actor.client.get("/v1/bots")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    limit, left, reset = limits(refused)
    assert (limit, left) == (3, 0)
    assert int(refused.headers["Retry-After"]) == reset
    # The limit is per tenant: another tenant on the same plan is unaffected.
    assert other.client.get("/v1/bots").status_code == 200


@pytest.mark.django_db
def test_a_plan_change_applies_its_rate_at_once(alice):
    assert limits(alice.client.get("/v1/bots"))[0] == 600  # the seeded Legend plan
    plan = PlanFactory(requests_per_minute=7)
    alice.tenant.plan = plan
    alice.tenant.save()
    assert limits(alice.client.get("/v1/bots"))[0] == 7


@pytest.mark.django_db
def test_requests_let_through_are_counted_in_the_monthly_usage(alice):
    for _ in range(3):
        alice.client.get("/v1/bots")
    alice.client.get("/v1/nothing")  # not an API endpoint: not counted
    assert UsageCounter.objects.get(tenant=alice.tenant).api_requests == 3


@pytest.mark.slow
def test_under_uvicorn_a_request_is_counted_once_its_response_is_sent(transactional_db):
    actor = make_actor()
    headers = {"Authorization": f"Bearer {actor.key}"}
    with uvicorn_server() as base:
        for _ in range(3):
            assert httpx.get(f"{base}/v1/bots", headers=headers, timeout=10).status_code == 200
        assert httpx.get(f"{base}/v1/bots/bot_unknown", headers=headers, timeout=10).status_code == 404
        deadline = time.monotonic() + 10
        while UsageCounter.objects.filter(tenant=actor.tenant, api_requests=4).count() == 0:
            assert time.monotonic() < deadline, "the requests were not counted"
            time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: the counter is shared through Redis")
def test_the_limit_is_counted_across_two_server_processes(transactional_db):
    actor = make_actor(plan_obj=PlanFactory(requests_per_minute=4))
    headers = {"Authorization": f"Bearer {actor.key}"}
    with uvicorn_server() as first, uvicorn_server() as second:
        wait_for_window_room(15)
        servers = [first, second, first, second, first]
        responses = [httpx.get(f"{base}/v1/bots", headers=headers, timeout=10) for base in servers]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    # Each process saw the other's calls: the remaining count went down across both.
    assert [limits(r)[1] for r in responses] == [3, 2, 1, 0, 0]
    assert responses[4].json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(responses[4].headers["Retry-After"]) <= 60
