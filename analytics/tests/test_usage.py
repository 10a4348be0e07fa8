"""GET /v1/analytics/usage: this month's usage against the plan, with a daily series, as the admin shows it."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import UsageCounter, UsageDay
from bothero.testing.factories import BotFactory, PlanFactory, TenantFactory
from conversations.tests.conftest import train


def usage(client, **query):
    response = client.get("/v1/analytics/usage", query)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def trained_bot(alice, django_capture_on_commit_callbacks):
    bot = BotFactory(tenant=alice.tenant)
    document = train(bot, capture=django_capture_on_commit_callbacks)
    bot.document = document
    return bot


def test_it_counts_chat_messages_tokens_and_requests_against_the_plan(alice, trained_bot):
    answers = []
    for question in ("When are you open on Saturdays?", "How long does shipping take?"):
        response = alice.client.post(
            "/v1/chat/completions", {"bot_id": trained_bot.public_id, "message": question}, format="json"
        )
        assert response.status_code == 200, response.content
        answers.append(response.json())
    body = usage(alice.client)
    today = timezone.now().date()
    assert body["object"] == "analytics.usage"
    assert body["month"] == f"{today:%Y-%m}"
    assert body["start"] == f"{today:%Y-%m}-01T00:00:00Z"
    assert body["plan"] == {
        "id": "legend",
        "name": "Legend",
        "requests_per_minute": alice.tenant.plan.requests_per_minute,
    }
    limit = alice.tenant.plan.max_messages_per_month
    assert body["messages"] == {"used": 2, "limit": limit, "remaining": limit - 2}
    prompt = sum(answer["usage"]["prompt_tokens"] for answer in answers)
    completion = sum(answer["usage"]["completion_tokens"] for answer in answers)
    assert body["prompt_tokens"] == {"used": prompt, "limit": None, "remaining": None}
    assert body["completion_tokens"]["used"] == completion > 0
    # The two chat requests were counted once their responses were sent; this one is not yet.
    assert body["api_requests"]["used"] == 2
    assert body["conversations"]["used"] == 2
    assert body["bots"] == {"used": 1, "limit": alice.tenant.plan.max_bots, "remaining": alice.tenant.plan.max_bots - 1}
    assert body["documents"]["used"] == 1
    storage_limit = alice.tenant.plan.max_storage_mb * 1024 * 1024
    size = trained_bot.document.size_bytes
    assert body["storage_bytes"] == {"used": size, "limit": storage_limit, "remaining": storage_limit - size}
    assert usage(alice.client)["api_requests"]["used"] == 3


def test_the_daily_series_is_zero_filled_up_to_today_and_adds_up_to_the_month(alice, trained_bot):
    alice.client.post("/v1/chat/completions", {"bot_id": trained_bot.public_id, "message": "Refunds?"}, format="json")
    body = usage(alice.client)
    today = timezone.now().date()
    assert [day["date"] for day in body["daily"]] == [
        (today.replace(day=1) + timedelta(days=n)).isoformat() for n in range(today.day)
    ]
    for field in ("messages", "api_requests", "prompt_tokens", "completion_tokens"):
        assert sum(day[field] for day in body["daily"]) == body[field]["used"], field
    assert body["daily"][-1]["messages"] == 1
    assert all(day["messages"] == 0 for day in body["daily"][:-1])


def test_a_past_month_shows_its_own_counters_and_days(alice):
    UsageCounter.objects.create(tenant=alice.tenant, period_start=date(2025, 2, 1), messages=30, api_requests=70)
    UsageDay.objects.create(tenant=alice.tenant, day=date(2025, 2, 3), messages=10, api_requests=20)
    UsageDay.objects.create(tenant=alice.tenant, day=date(2025, 2, 28), messages=20, api_requests=50)
    UsageDay.objects.create(tenant=alice.tenant, day=date(2025, 3, 1), messages=99)
    body = usage(alice.client, month="2025-02")
    assert (body["start"], body["end"]) == ("2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z")
    assert body["messages"]["used"] == 30
    assert body["api_requests"]["used"] == 70
    assert len(body["daily"]) == 28
    assert body["daily"][2] == {
        "date": "2025-02-03",
        "messages": 10,
        "api_requests": 20,
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }
    assert body["daily"][-1]["messages"] == 20


def test_an_unlimited_plan_has_no_limit_and_nothing_remaining(db):
    from conftest import make_actor

    actor = make_actor(
        plan_obj=PlanFactory(max_bots=None, max_documents=None, max_storage_mb=None, max_messages_per_month=None)
    )
    body = usage(actor.client)
    for field in ("messages", "bots", "documents", "storage_bytes"):
        assert body[field] == {"used": 0, "limit": None, "remaining": None}, field


def test_remaining_never_goes_below_zero(alice):
    alice.tenant.plan.max_messages_per_month = 5
    alice.tenant.plan.save()
    UsageCounter.objects.create(tenant=alice.tenant, period_start=timezone.now().date().replace(day=1), messages=7)
    assert usage(alice.client)["messages"] == {"used": 7, "limit": 5, "remaining": 0}


@pytest.mark.parametrize("month", ["2025-13", "2025/02", "last", "2025-02-01"])
def test_a_malformed_month_is_a_400(alice, month):
    response = alice.client.get("/v1/analytics/usage", {"month": month})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_month"
    assert response.json()["error"]["param"] == "month"


def test_a_future_month_is_a_400(alice):
    next_month = (timezone.now().date().replace(day=1) + timedelta(days=32)).strftime("%Y-%m")
    response = alice.client.get("/v1/analytics/usage", {"month": next_month})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_month"


def test_another_tenants_usage_is_not_counted(alice, charlie, trained_bot):
    alice.client.post("/v1/chat/completions", {"bot_id": trained_bot.public_id, "message": "Hours?"}, format="json")
    body = usage(charlie.client)
    assert body["messages"]["used"] == 0
    assert body["bots"]["used"] == body["documents"]["used"] == body["conversations"]["used"] == 0


def test_the_admin_shows_the_same_figures(alice, trained_bot, client):
    alice.client.post("/v1/chat/completions", {"bot_id": trained_bot.public_id, "message": "Hours?"}, format="json")
    TenantFactory()  # another tenant on the page changes nothing
    body = usage(alice.client)
    staff = get_user_model().objects.create_superuser("staff@bothero.test", "staff@bothero.test", "pw-staff-123")
    client.force_login(staff)
    page = client.get(f"/admin/analytics/tenantusage/{alice.tenant.pk}/change/").content.decode()
    messages = body["messages"]
    assert f"Messages</strong>: {messages['used']:,} / {messages['limit']:,}" in page
    assert f"Prompt tokens</strong>: {body['prompt_tokens']['used']:,}" in page
    assert f"Completion tokens</strong>: {body['completion_tokens']['used']:,}" in page
    # The usage request itself was counted once its response had been sent.
    assert f"API requests</strong>: {body['api_requests']['used'] + 1:,} " in page
    assert f"Bots</strong>: {body['bots']['used']} / {body['bots']['limit']}" in page
    assert f"Documents</strong>: {body['documents']['used']} / {body['documents']['limit']:,}" in page
    assert f"Conversations started</strong>: {body['conversations']['used']}" in page
