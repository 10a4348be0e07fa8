from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.services import usage_increment
from analytics.tests.conftest import chat, lead_at


@pytest.fixture
def staff_client(db, client):
    admin = get_user_model().objects.create_superuser("staff@bothero.test", "staff@bothero.test", "pw-staff-123")
    client.force_login(admin)
    return client


def test_staff_see_each_tenants_usage_this_month_against_its_plan(staff_client, alice, alice_bot):
    conversation = chat(alice_bot, timezone.now() - timedelta(minutes=1))
    lead_at(conversation, timezone.now())
    usage_increment(tenant=alice.tenant, messages=1234)
    response = staff_client.get("/admin/analytics/tenantusage/")
    assert response.status_code == 200
    page = response.content.decode()
    assert alice.tenant.name in page
    assert "1,234 / 50,000 (2%)" in page  # Legend: 50,000 messages a month
    assert "1 / 20 (5%)" in page  # one bot of 20
    detail = staff_client.get(f"/admin/analytics/tenantusage/{alice.tenant.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert "1,234 / 50,000 (2%)" in body
    assert "Leads captured</strong>: 1" in body
    assert "Conversations started</strong>: 1" in body


def test_the_usage_view_is_read_only(staff_client, alice):
    assert staff_client.get("/admin/analytics/tenantusage/add/").status_code == 403
    response = staff_client.post(f"/admin/analytics/tenantusage/{alice.tenant.pk}/change/", {"name": "Renamed"})
    assert response.status_code == 403
    alice.tenant.refresh_from_db()
    assert alice.tenant.name != "Renamed"
