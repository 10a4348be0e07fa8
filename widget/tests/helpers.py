"""What a browser running the widget sends: the publishable key, its origin and its visitor id."""

import secrets

from rest_framework.test import APIClient

from bothero.testing.helpers import unique_client_address

SITE = "https://www.acme.example"


def visitor_id() -> str:
    return "v_" + secrets.token_urlsafe(18)


def browser(key: str, *, origin: str | None = SITE, visitor=None, address: str | None = None, **extra) -> APIClient:
    """An API client like the widget on `origin` (`visitor=False`: no visitor id)."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}", **extra}
    if origin is not None:
        headers["HTTP_ORIGIN"] = origin
    if visitor is not False:
        headers["HTTP_X_BOTHERO_VISITOR"] = visitor or visitor_id()
    client = APIClient(REMOTE_ADDR=address or unique_client_address())
    client.credentials(**headers)
    return client
