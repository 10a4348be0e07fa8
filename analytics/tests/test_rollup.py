import os
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import Tenant
from analytics import services, tasks
from analytics.latency import histogram_from_bytes
from analytics.models import DailyRollup, RollupState
from analytics.tests.conftest import chat, lead_at
from bothero.testing.factories import BotFactory
from bothero.testing.processes import celery_worker
from conftest import make_actor
from conversations.models import Message


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def rollup_rows(tenant):
    return {
        (row.bot_id, row.day): (row.conversations, row.user_messages, row.assistant_messages, row.fallbacks, row.leads)
        for row in DailyRollup.objects.filter(tenant=tenant)
    }


def test_a_day_rolls_up_per_bot_and_rolling_it_up_again_changes_nothing(alice, alice_bot):
    other = BotFactory(tenant=alice.tenant)
    conversation = chat(alice_bot, utc(2026, 2, 10, 23, 58), exchanges=1, latency_ms=250, feedback="up")
    chat(alice_bot, utc(2026, 2, 10, 1), fallback=True, latency_ms=0)
    chat(other, utc(2026, 2, 10, 12), exchanges=2, sources=[])
    lead_at(conversation, utc(2026, 2, 10, 23, 59))
    chat(alice_bot, utc(2026, 2, 11, 0, 0))  # the next UTC day
    rows = services.rollup_day(tenant=alice.tenant, day=date(2026, 2, 10))
    mine = DailyRollup.objects.get(tenant=alice.tenant, bot=alice_bot, day=date(2026, 2, 10))
    assert len(rows) == 3  # each bot, and the tenant's row for all its bots
    assert (mine.conversations, mine.user_messages, mine.assistant_messages) == (2, 2, 2)
    assert (mine.answered_from_knowledge, mine.fallbacks, mine.feedback_up, mine.leads) == (1, 1, 1, 1)
    assert (mine.prompt_tokens, mine.completion_tokens) == (200, 40)
    histogram = histogram_from_bytes(mine.latency_histogram)
    assert histogram.sum() == 2
    assert histogram[0] == 1  # the 0 ms answer has the first slot
    theirs = DailyRollup.objects.get(bot=other)
    assert (theirs.user_messages, theirs.answered_from_knowledge) == (2, 0)
    tenant_row = DailyRollup.objects.get(tenant=alice.tenant, bot=None)
    assert (tenant_row.conversations, tenant_row.user_messages, tenant_row.fallbacks) == (3, 4, 1)
    assert (
        histogram_from_bytes(tenant_row.latency_histogram)
        == histogram_from_bytes(mine.latency_histogram) + histogram_from_bytes(theirs.latency_histogram)
    ).all()
    assert tenant_row.bot_ids == sorted([alice_bot.pk, other.pk])
    before = rollup_rows(alice.tenant)
    services.rollup_day(tenant=alice.tenant, day=date(2026, 2, 10))
    assert rollup_rows(alice.tenant) == before
    assert DailyRollup.objects.filter(tenant=alice.tenant).count() == 3


def test_rolling_up_again_replaces_rows_that_no_longer_have_activity(alice, alice_bot):
    conversation = chat(alice_bot, utc(2026, 2, 10, 12))
    services.rollup_day(tenant=alice.tenant, day=date(2026, 2, 10))
    conversation.delete()
    services.rollup_day(tenant=alice.tenant, day=date(2026, 2, 10))
    assert not DailyRollup.objects.filter(tenant=alice.tenant).exists()


def test_it_catches_up_every_missing_day_from_the_first_activity(alice, alice_bot, charlie_bot):
    today = date(2026, 3, 1)
    chat(alice_bot, utc(2026, 2, 20, 8))
    chat(alice_bot, utc(2026, 2, 25, 8))
    chat(alice_bot, utc(2026, 3, 1, 8))  # today: left to the live queries
    chat(charlie_bot, utc(2026, 2, 26, 8))
    done = services.rollup_tenant(tenant=alice.tenant, today=today)
    assert done == [date(2026, 2, 20) + timedelta(days=n) for n in range(9)]
    assert RollupState.objects.get(tenant=alice.tenant).rolled_up_through == date(2026, 2, 28)
    assert sorted({day for _, day in rollup_rows(alice.tenant)}) == [date(2026, 2, 20), date(2026, 2, 25)]
    # Up to date: nothing to do until the next day.
    assert services.rollup_tenant(tenant=alice.tenant, today=today) == []


def test_a_new_day_also_re_rolls_the_lookback_window_for_late_feedback(alice, alice_bot):
    chat(alice_bot, utc(2026, 2, 25, 8))
    services.rollup_tenant(tenant=alice.tenant, today=date(2026, 3, 1))
    Message.objects.filter(tenant=alice.tenant, role="assistant").update(feedback_rating="down")
    done = services.rollup_tenant(tenant=alice.tenant, today=date(2026, 3, 2))
    lookback = settings.ANALYTICS_ROLLUP_LOOKBACK_DAYS
    assert done == [date(2026, 3, 1) - timedelta(days=lookback - 1) + timedelta(days=n) for n in range(lookback)]
    assert DailyRollup.objects.get(tenant=alice.tenant, bot=alice_bot).feedback_down == 1
    assert DailyRollup.objects.get(tenant=alice.tenant, bot=None).feedback_down == 1


def test_a_long_backfill_is_done_in_bounded_runs(alice, alice_bot, settings):
    settings.ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN = 3
    settings.ANALYTICS_ROLLUP_LOOKBACK_DAYS = 7
    chat(alice_bot, utc(2026, 1, 1, 8))
    runs = 0
    while services.rollup_tenant(tenant=alice.tenant, today=date(2026, 3, 1)):
        runs += 1
        assert runs < 30, "the backfill must progress by 3 new days per run"
    # 59 days (1 January – 28 February) at 3 new days a run: 20 runs, lookback re-rolls notwithstanding.
    assert runs == 20
    assert RollupState.objects.get(tenant=alice.tenant).rolled_up_through == date(2026, 2, 28)


def test_deleting_a_bot_takes_its_history_out_of_the_tenant_rows_on_the_next_run(alice, alice_bot):
    other = BotFactory(tenant=alice.tenant)
    chat(alice_bot, utc(2026, 1, 5, 8))
    chat(other, utc(2026, 1, 5, 9), exchanges=2)
    services.rollup_tenant(tenant=alice.tenant, today=date(2026, 3, 1))
    assert DailyRollup.objects.get(tenant=alice.tenant, bot=None, day=date(2026, 1, 5)).conversations == 2
    other.delete()  # cascades to its conversations, messages and own rollup rows
    assert services.rollup_tenant(tenant=alice.tenant, today=date(2026, 3, 1)) == [date(2026, 1, 5)]
    tenant_row = DailyRollup.objects.get(tenant=alice.tenant, bot=None, day=date(2026, 1, 5))
    assert (tenant_row.conversations, tenant_row.user_messages, tenant_row.bot_ids) == (1, 1, [alice_bot.pk])


def test_a_tenant_without_activity_is_marked_up_to_date(alice):
    assert services.rollup_tenant(tenant=alice.tenant, today=date(2026, 3, 1)) == []
    assert RollupState.objects.get(tenant=alice.tenant).rolled_up_through == date(2026, 2, 28)


def test_the_beat_task_rolls_up_every_active_tenant_that_is_behind(alice, alice_bot, charlie, charlie_bot):
    yesterday = timezone.now() - timedelta(days=1)
    chat(alice_bot, yesterday)
    chat(charlie_bot, yesterday)
    Tenant.objects.filter(pk=charlie.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    assert tasks.rollup_due_tenants.delay().get() == 1
    assert DailyRollup.objects.filter(tenant=alice.tenant).count() == 2
    assert not DailyRollup.objects.filter(tenant=charlie.tenant).exists()
    assert tasks.rollup_due_tenants.delay().get() == 0


def test_the_rollup_is_scheduled_hourly_on_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["analytics-rollup"]
    assert entry["task"] == tasks.rollup_due_tenants.name
    assert entry["schedule"].minute == {settings.ANALYTICS_ROLLUP_MINUTE}
    assert entry["schedule"].hour == set(range(24))


def test_the_task_for_a_deleted_tenant_does_nothing(db):
    assert tasks.rollup_tenant.delay(10**9).get() == 0


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="a real Celery worker needs REDIS_URL (a Redis broker)")
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_beat_task_and_the_rollups(celery_runs_eagerly):
    from bothero.celery import app

    actor = make_actor()
    chat(BotFactory(tenant=actor.tenant), timezone.now() - timedelta(days=2))
    with celery_worker():
        app.conf.task_always_eager = False
        try:
            tasks.rollup_due_tenants.delay()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = RollupState.objects.filter(tenant=actor.tenant).first()
                if state and state.rolled_up_through == timezone.now().astimezone(UTC).date() - timedelta(days=1):
                    break
                time.sleep(0.2)
        finally:
            app.conf.task_always_eager = True
    assert RollupState.objects.get(tenant=actor.tenant).rolled_up_through is not None
    assert DailyRollup.objects.filter(tenant=actor.tenant).count() == 2
