import pytest

from bothero.testing.factories import WebhookEndpointFactory
from webhooks.models import WebhookEndpoint
from webhooks.tests.receiver import Receiver


@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1 that records requests and answers scripted replies."""
    with Receiver() as server:
        yield server


@pytest.fixture
def private_urls(settings):
    """Let webhooks reach http and loopback (the receiver); compress retries so tests run fast."""
    settings.ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300, 1800]
    settings.WEBHOOK_RETRY_JITTER = 0.0
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0
    return settings


def make_endpoint(tenant, url: str, events=("*",), **fields) -> WebhookEndpoint:
    return WebhookEndpointFactory(tenant=tenant, url=url, events=list(events), **fields)


@pytest.fixture
def alice_endpoint(alice, receiver, private_urls):
    return make_endpoint(alice.tenant, f"{receiver.url}/hooks")
