"""Membership roles: owners and admins manage API keys and webhooks; members use the rest of the API.

Roles belong to users, so they apply to a user's access token (password grant). An API key acts for
the tenant (only owners and admins can create one).
"""

import pytest
from rest_framework.test import APIClient

from accounts.models import Membership
from bothero.testing.factories import TEST_PASSWORD, MembershipFactory, UserFactory
from bothero.testing.helpers import unique_client_address


def user_client(tenant, role) -> APIClient:
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = APIClient(REMOTE_ADDR=unique_client_address())
    response = client.post(
        "/v1/auth/token",
        {"grant_type": "password", "email": user.email, "password": TEST_PASSWORD, "tenant_id": tenant.public_id},
        format="json",
    )
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")
    return client


HOOK = {"url": "https://hooks.not-yet-live.invalid/bothero", "events": ["*"]}


@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.ADMIN])
def test_owners_and_admins_manage_keys_and_webhooks(alice, role):
    client = user_client(alice.tenant, role)
    assert client.get("/v1/auth/keys").status_code == 200
    key = client.post("/v1/auth/keys", {"name": "ci"}, format="json")
    assert key.status_code == 201, key.content
    assert client.delete(f"/v1/auth/keys/{key.json()['id']}").status_code == 200
    hook = client.post("/v1/webhooks", HOOK, format="json")
    assert hook.status_code == 201, hook.content
    assert client.delete(f"/v1/webhooks/{hook.json()['id']}").status_code == 200


def test_a_member_may_not_manage_keys_or_webhooks(alice):
    client = user_client(alice.tenant, Membership.Role.MEMBER)
    hook_id = alice.client.post("/v1/webhooks", HOOK, format="json").json()["id"]
    key_id = alice.tenant.api_keys.get().public_id
    refused = [
        client.get("/v1/auth/keys"),
        client.get(f"/v1/auth/keys/{key_id}"),
        client.post("/v1/auth/keys", {"name": "mine"}, format="json"),
        client.delete(f"/v1/auth/keys/{key_id}"),
        client.post("/v1/webhooks", HOOK, format="json"),
        client.patch(f"/v1/webhooks/{hook_id}", {"enabled": False}, format="json"),
        client.delete(f"/v1/webhooks/{hook_id}"),
        client.post(f"/v1/webhooks/{hook_id}/rotate-secret"),
        client.post(f"/v1/webhooks/{hook_id}/test"),
    ]
    for response in refused:
        assert response.status_code == 403, (response.request["PATH_INFO"], response.content)
        assert response.json()["error"]["code"] == "role_required"
    assert alice.tenant.api_keys.get().revoked_at is None


def test_a_member_uses_the_rest_of_the_api_and_reads_webhooks(alice, alice_bot):
    client = user_client(alice.tenant, Membership.Role.MEMBER)
    assert client.get("/v1/bots").status_code == 200
    assert client.post("/v1/bots", {"name": "Sales"}, format="json").status_code == 201
    assert client.get("/v1/webhooks").status_code == 200


def test_an_api_key_acts_for_the_tenant(alice):
    assert alice.client.post("/v1/webhooks", HOOK, format="json").status_code == 201
    assert alice.client.get("/v1/auth/keys").status_code == 200
