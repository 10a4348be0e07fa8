"""Unknown paths answer the JSON envelope for every method, with CSRF checks on as in production."""

import pytest
from django.test import Client


@pytest.mark.parametrize("method", ["post", "patch", "put", "delete"])
@pytest.mark.parametrize("path", ["/v1/webhooks/", "/v1/bots/", "/v1/nope", "/nope"])
def test_a_write_to_an_unknown_path_is_a_404_envelope_not_a_csrf_page(db, alice, method, path):
    # Django's test client skips CSRF unless asked; a real browser-less client gets the check.
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(
        path, data="{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {alice.key}"
    )
    assert response.status_code == 404, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["request_id"].startswith("req_")


def test_a_failed_csrf_check_answers_the_envelope(db):
    # The admin's login form is the one view that checks CSRF.
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert response.json()["error"]["type"] == "permission_error"
