"""Request signing for keys created with require_signature (docs/api.md, "Request signing"), through the public API."""

import json
import time

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create
from bothero.testing.helpers import signed_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def signer(alice):
    """A client holding a signing key of Alice's tenant, and that key's secret."""
    created = api_key_create(tenant=alice.tenant, name="signed", require_signature=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.key}")
    client.secret = created.signing_secret
    return client


def post_bot(client, body: bytes, headers: dict, path: str = "/v1/bots"):
    return client.post(path, body, content_type="application/json", headers=headers)


def error_code(response) -> str:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    return response.json()["error"]["code"]


def test_the_signing_secret_is_shown_once_and_looks_like_one(signer):
    assert signer.secret.startswith("bhsig_")
    assert len(signer.secret) > 40


def test_a_correctly_signed_request_passes(signer, alice):
    body = json.dumps({"name": "Signed bot"}).encode()
    response = post_bot(signer, body, signed_headers(signer.secret, method="POST", path="/v1/bots", body=body))
    assert response.status_code == 201, response.content
    assert alice.tenant.bots.filter(name="Signed bot").exists()


def test_a_signed_get_with_a_query_string_passes(signer):
    path = "/v1/bots?limit=5"
    response = signer.get(path, headers=signed_headers(signer.secret, method="GET", path=path))
    assert response.status_code == 200, response.content


def test_an_unsigned_request_is_refused(signer):
    assert error_code(signer.get("/v1/bots")) == "signature_required"


@pytest.mark.parametrize("missing", ["X-BotHero-Timestamp", "X-BotHero-Nonce", "X-BotHero-Signature"])
def test_a_request_missing_one_signing_header_is_refused(signer, missing):
    headers = signed_headers(signer.secret, method="GET", path="/v1/bots")
    del headers[missing]
    assert error_code(signer.get("/v1/bots", headers=headers)) == "signature_required"


def test_a_tampered_body_is_refused(signer, alice):
    signed_body = json.dumps({"name": "Signed bot"}).encode()
    headers = signed_headers(signer.secret, method="POST", path="/v1/bots", body=signed_body)
    tampered = json.dumps({"name": "Evil bot"}).encode()
    assert error_code(post_bot(signer, tampered, headers)) == "invalid_signature"
    assert not alice.tenant.bots.exists()


def test_a_tampered_path_is_refused(signer, alice_bot):
    headers = signed_headers(signer.secret, method="GET", path="/v1/bots")
    assert error_code(signer.get(f"/v1/bots/{alice_bot.public_id}", headers=headers)) == "invalid_signature"


def test_a_tampered_query_is_refused(signer):
    headers = signed_headers(signer.secret, method="GET", path="/v1/bots?limit=5")
    assert error_code(signer.get("/v1/bots?limit=50", headers=headers)) == "invalid_signature"


def test_a_signature_for_another_method_is_refused(signer, alice_bot):
    path = f"/v1/bots/{alice_bot.public_id}"
    headers = signed_headers(signer.secret, method="GET", path=path)
    assert error_code(signer.delete(path, headers=headers)) == "invalid_signature"
    alice_bot.refresh_from_db()  # still there


def test_a_signature_with_another_secret_is_refused(signer, alice):
    other = api_key_create(tenant=alice.tenant, name="other", require_signature=True)
    headers = signed_headers(other.signing_secret, method="GET", path="/v1/bots")
    assert error_code(signer.get("/v1/bots", headers=headers)) == "invalid_signature"


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_a_stale_or_future_timestamp_is_refused(signer, offset):
    timestamp = int(time.time()) + offset
    headers = signed_headers(signer.secret, method="GET", path="/v1/bots", timestamp=timestamp)
    assert error_code(signer.get("/v1/bots", headers=headers)) == "signature_timestamp_out_of_range"


def test_a_timestamp_inside_the_window_passes(signer):
    headers = signed_headers(signer.secret, method="GET", path="/v1/bots", timestamp=int(time.time()) - 250)
    assert signer.get("/v1/bots", headers=headers).status_code == 200


def test_a_replayed_nonce_is_refused(signer):
    headers = signed_headers(signer.secret, method="GET", path="/v1/bots")
    assert signer.get("/v1/bots", headers=headers).status_code == 200
    assert error_code(signer.get("/v1/bots", headers=headers)) == "nonce_reused"
    # Even re-signed with a fresh timestamp, the nonce stays spent.
    again = signed_headers(signer.secret, method="GET", path="/v1/bots", nonce=headers["X-BotHero-Nonce"])
    assert error_code(signer.get("/v1/bots", headers=again)) == "nonce_reused"


def test_a_badly_signed_request_does_not_spend_its_nonce(signer):
    headers = signed_headers(signer.secret, method="GET", path="/v1/bots")
    forged = {**headers, "X-BotHero-Signature": "v1=" + "0" * 64}
    assert error_code(signer.get("/v1/bots", headers=forged)) == "invalid_signature"
    assert signer.get("/v1/bots", headers=headers).status_code == 200


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has spaces in it!!"])
def test_a_malformed_nonce_is_refused(signer, nonce):
    headers = signed_headers(signer.secret, method="GET", path="/v1/bots", nonce=nonce)
    assert error_code(signer.get("/v1/bots", headers=headers)) == "invalid_nonce"


def test_keys_without_require_signature_ignore_signing_headers(alice):
    headers = signed_headers("bhsig_whatever", method="GET", path="/v1/bots")
    assert alice.client.get("/v1/bots", headers=headers).status_code == 200


def test_the_worked_example_in_the_readme_matches_the_server():
    """The Python example of docs/api.md, byte for byte: the server's function gives the same signature."""
    import hashlib
    import hmac

    secret, timestamp, nonce = "bhsig_example", "1767225600", "3f1c9a7e5b2d4c6a8e0f1a2b3c4d5e6f"
    body = b'{"name": "Support"}'
    message = f"v1:{timestamp}:{nonce}:POST:/v1/bots:{hashlib.sha256(body).hexdigest()}"
    expected = "v1=" + hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    from bothero.api.signing import compute_signature

    assert expected == "v1=eae08c0aaed023e5b0337b902cb3a46ed6efd70ad78b0e84a38141b5da108ff1"  # printed in docs/api.md
    assert (
        compute_signature(secret, timestamp=timestamp, nonce=nonce, method="POST", path="/v1/bots", body=body)
        == expected
    )
