"""Shared fixtures, in the spirit of healthchecks' Alice (owner), Bob (teammate) and Charlie (outsider).

`alice` is a Legend tenant with an API key; `charlie` is another tenant. Every
endpoint that takes an id has a test that Charlie gets a 404 for Alice's ids.
"""

from dataclasses import dataclass

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from bothero.testing.factories import ApiKeyFactory, BotFactory, MembershipFactory, TenantFactory, plan
from bothero.testing.helpers import unique_client_address


@dataclass
class Actor:
    tenant: object
    user: object
    key: str
    client: APIClient


def make_actor(plan_slug: str = "legend", *, plan_obj=None) -> Actor:
    """A tenant (on `plan_obj`, or the seeded plan `plan_slug`) with an owner, an API key and a client using it."""
    tenant = TenantFactory(plan=plan_obj or plan(plan_slug))
    membership = MembershipFactory(tenant=tenant)
    key = ApiKeyFactory(tenant=tenant, name="test key", created_by=membership.user).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return Actor(tenant=tenant, user=membership.user, key=key, client=client)


@pytest.fixture
def alice(db) -> Actor:
    return make_actor()


@pytest.fixture
def charlie(db) -> Actor:
    return make_actor()


@pytest.fixture
def alice_bot(alice):
    return BotFactory(tenant=alice.tenant)


@pytest.fixture
def anonymous_client() -> APIClient:
    """No credentials, and a client address of its own (failed sign-ins are counted per address)."""
    return APIClient(REMOTE_ADDR=unique_client_address())


@pytest.fixture(autouse=True, scope="session")
def celery_runs_eagerly():
    """Tasks run in the test process unless a test starts a real worker (see `celery_worker_process`)."""
    from bothero.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    # Ingestion in the test's own thread, so that a test sees its result (one test checks the threaded path).
    override = override_settings(KNOWLEDGE_INGEST_IN_THREAD=False)
    override.enable()
    yield
    override.disable()


def pytest_terminal_summary(terminalreporter):
    """The fault suite's table (bothero/tests/test_faults.py), when it ran."""
    from bothero.tests.test_faults import RESULTS

    if not RESULTS:
        return
    terminalreporter.section("fault suite")
    columns = list(dict.fromkeys(name for row in RESULTS for name in row))
    widths = {c: max(len(c), *(len(row.get(c, "")) for row in RESULTS)) for c in columns}
    terminalreporter.write_line(" | ".join(c.ljust(widths[c]) for c in columns))
    terminalreporter.write_line("-+-".join("-" * widths[c] for c in columns))
    for row in RESULTS:
        terminalreporter.write_line(" | ".join(row.get(c, "").ljust(widths[c]) for c in columns))
