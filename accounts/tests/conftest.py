import pytest
from rest_framework.test import APIClient

from bothero.testing.factories import TEST_PASSWORD
from bothero.testing.helpers import unique_client_address


class TokenClient:
    """Calls the public token endpoints from one client address, and the API with a bearer credential."""

    def __init__(self):
        self.address = unique_client_address()
        self.client = APIClient(REMOTE_ADDR=self.address)

    def exchange_key(self, key: str):
        return self.client.post("/v1/auth/token", {"grant_type": "api_key", "api_key": key}, format="json")

    def exchange_password(self, email: str, password: str = TEST_PASSWORD):
        return self.client.post(
            "/v1/auth/token", {"grant_type": "password", "email": email, "password": password}, format="json"
        )

    def refresh(self, refresh_token: str):
        return self.client.post("/v1/auth/refresh", {"refresh_token": refresh_token}, format="json")

    def call(self, credential: str, method: str = "get", path: str = "/v1/bots", data=None):
        return getattr(self.client, method)(path, data, format="json", HTTP_AUTHORIZATION=f"Bearer {credential}")


@pytest.fixture
def tokens() -> TokenClient:
    return TokenClient()
