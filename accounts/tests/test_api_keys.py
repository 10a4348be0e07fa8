"""API keys: format, management endpoints, and that the database never holds a key or signing secret."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.keys import API_KEY_PREFIX, generate_api_key, is_well_formed_api_key
from accounts.models import ApiKey
from accounts.services import api_key_create

pytestmark = pytest.mark.django_db

KEY_PATTERN = re.compile(r"^bh_live_[0-9A-Za-z]{32}[0-9A-Za-z]{6}$")


def call_with(key: str, path: str = "/v1/bots"):
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {key}")


def database_cells_containing(secret: str) -> list[str]:
    """Every text, varchar, json or bytea cell in the whole database (public schema) that contains `secret`."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = 'public'
              AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')
            """
        )
        columns = cursor.fetchall()
        hits = []
        for table, column, data_type in columns:
            if data_type == "bytea":
                condition = f"position(convert_to(%s, 'UTF8') in \"{column}\") > 0"
            else:
                condition = f'strpos("{column}"::text, %s) > 0'
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE {condition}', [secret])
            if cursor.fetchone()[0]:
                hits.append(f"{table}.{column}")
    return hits


def test_a_key_is_recognisable_offline_by_its_prefix_and_checksum():
    key = generate_api_key()
    assert KEY_PATTERN.match(key)
    assert is_well_formed_api_key(key)
    # One character changed in the random part or the checksum: the checksum no longer matches.
    body = key[len(API_KEY_PREFIX) :]
    for index in (0, 31, 32, len(body) - 1):
        swapped = "A" if body[index] != "A" else "B"
        assert not is_well_formed_api_key(API_KEY_PREFIX + body[:index] + swapped + body[index + 1 :])
    assert not is_well_formed_api_key(key[:-1])
    assert not is_well_formed_api_key("bh_test_" + body)


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(alice):
    response = alice.client.post("/v1/auth/keys", {"name": "CI"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("key_")
    assert body["object"] == "api_key"
    assert KEY_PATTERN.match(body["key"])
    assert body["prefix"] == body["key"][:12]
    assert body["signing_secret"] is None
    assert body["revoked"] is False
    row = ApiKey.objects.get(public_id=body["id"])
    assert row.key_hash == hashlib.sha256(body["key"].encode()).hexdigest()
    assert row.tenant == alice.tenant
    # The new key works, and the key is never shown again.
    assert call_with(body["key"]).status_code == 200
    listed = alice.client.get("/v1/auth/keys").json()
    assert {item["id"] for item in listed["data"]} == {
        body["id"],
        alice.tenant.api_keys.exclude(pk=row.pk).get().public_id,
    }
    assert "key" not in listed["data"][0]
    assert "key" not in alice.client.get(f"/v1/auth/keys/{body['id']}").json()


def test_no_plaintext_key_or_signing_secret_is_anywhere_in_the_database(alice):
    created = [
        alice.client.post("/v1/auth/keys", {"name": "plain"}, format="json", HTTP_IDEMPOTENCY_KEY="k1").json(),
        alice.client.post("/v1/auth/keys", {"name": "signed", "require_signature": True}, format="json").json(),
    ]
    secrets_shown = [alice.key, *(c["key"] for c in created), created[1]["signing_secret"]]
    assert created[1]["signing_secret"].startswith("bhsig_")
    # Exchange tokens too, so their tables have rows to scan.
    alice.client.post("/v1/auth/token", {"grant_type": "api_key", "api_key": created[0]["key"]}, format="json")
    for secret in secrets_shown:
        assert database_cells_containing(secret) == [], secret
    # The scan itself finds what is there: the stored hash of a key.
    assert database_cells_containing(hashlib.sha256(alice.key.encode()).hexdigest()) == ["accounts_apikey.key_hash"]


def test_an_idempotent_key_creation_is_not_replayed_with_the_key(alice):
    first = alice.client.post("/v1/auth/keys", {"name": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="create-once")
    assert first.status_code == 201
    again = alice.client.post("/v1/auth/keys", {"name": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="create-once")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "idempotency_response_withheld"
    assert alice.tenant.api_keys.filter(name="once").count() == 1


def test_revoking_a_key_stops_it_at_once(alice):
    created = alice.client.post("/v1/auth/keys", {"name": "short-lived"}, format="json").json()
    response = alice.client.delete(f"/v1/auth/keys/{created['id']}")
    assert response.status_code == 200, response.content
    assert response.json()["revoked"] is True
    assert response.json()["revoked_at"] is not None
    refused = call_with(created["key"])
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_revoked"
    # Revoking twice is harmless.
    assert alice.client.delete(f"/v1/auth/keys/{created['id']}").status_code == 200


def test_an_expired_key_is_refused(alice):
    created = api_key_create(tenant=alice.tenant, name="expiring", expires_at=timezone.now() + timedelta(hours=1))
    assert call_with(created.key).status_code == 200
    ApiKey.objects.filter(pk=created.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = call_with(created.key)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_expired"


def test_a_key_cannot_be_created_already_expired(alice):
    response = alice.client.post("/v1/auth/keys", {"name": "past", "expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "expires_at"


def test_last_used_is_recorded(alice):
    row = alice.tenant.api_keys.get()
    assert row.last_used_at is None
    alice.client.get("/v1/bots")
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_an_outsider_gets_404_for_a_key_on_every_key_endpoint(alice, charlie):
    key_id = alice.tenant.api_keys.get().public_id
    for method in ("get", "delete"):
        response = getattr(charlie.client, method)(f"/v1/auth/keys/{key_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "api_key_not_found"
    assert alice.tenant.api_keys.get().revoked_at is None
    assert alice.client.get("/v1/bots").status_code == 200
