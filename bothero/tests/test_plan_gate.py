"""The plan gate: the API is sold on Legend and above; suspended tenants are refused."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Plan
from accounts.services import tenant_change_plan, tenant_set_status
from conftest import make_actor

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("plan_slug", ["free", "starter", "pro"])
def test_plans_below_legend_get_403_plan_upgrade_required_on_every_call(plan_slug):
    actor = make_actor(plan_slug)
    for method, path in (
        ("get", "/v1/bots"),
        ("post", "/v1/bots"),
        ("get", "/v1/auth/keys"),
        ("get", "/v1/bots/bot_x"),
    ):
        response = getattr(actor.client, method)(path, {"name": "x"} if method == "post" else None, format="json")
        assert response.status_code == 403, (path, response.content)
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("permission_error", "plan_upgrade_required")
    assert not actor.tenant.bots.exists()


@pytest.mark.parametrize("plan_slug", ["legend", "enterprise"])
def test_legend_and_enterprise_pass(plan_slug):
    actor = make_actor(plan_slug)
    assert actor.client.get("/v1/bots").status_code == 200
    assert actor.client.post("/v1/bots", {"name": "x"}, format="json").status_code == 201


def test_the_seeded_plans_put_the_api_at_legend_for_99_dollars():
    plans = {p.slug: p for p in Plan.objects.all()}
    assert [slug for slug in ("free", "starter", "pro", "legend", "enterprise") if plans[slug].api_access] == [
        "legend",
        "enterprise",
    ]
    assert plans["legend"].monthly_price_cents == 9900
    assert all(plans[s].monthly_price_cents < 9900 for s in ("free", "starter", "pro"))


def test_a_suspended_tenant_gets_403_tenant_suspended_until_reactivated(alice):
    tenant_set_status(tenant=alice.tenant, status="suspended")
    response = alice.client.get("/v1/bots")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_suspended"
    tenant_set_status(tenant=alice.tenant, status="active")
    assert alice.client.get("/v1/bots").status_code == 200


def test_upgrading_opens_the_api_and_downgrading_closes_it():
    actor = make_actor("pro")
    assert actor.client.get("/v1/bots").status_code == 403
    tenant_change_plan(tenant=actor.tenant, plan=Plan.objects.get(slug="legend"))
    assert actor.client.get("/v1/bots").status_code == 200
    tenant_change_plan(tenant=actor.tenant, plan=Plan.objects.get(slug="starter"))
    assert actor.client.get("/v1/bots").status_code == 403


def test_the_gate_is_after_authentication_so_strangers_learn_nothing():
    response = APIClient().get("/v1/bots", HTTP_AUTHORIZATION="Bearer bh_live_" + "a" * 38)
    assert response.status_code == 401
