"""Recovery of ingestion without losing a document: the claim's heartbeat, the sweep, a broker that is down.

The sweep is run here with the clock moved forward; the real worker, beat and
broker versions of the same faults are in the fault suite
(bothero/tests/test_faults.py).
"""

import os
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from bothero.celery import app as celery_app
from bothero.testing.factories import BotFactory
from bothero.testing.processes import celery_worker, free_port, uvicorn_server
from conftest import make_actor
from knowledge import services
from knowledge.models import Document
from knowledge.tests.test_ingestion import queued_text_document
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def test_a_transient_error_keeps_the_claim_for_the_retry_and_the_sweep_off_it_until_then(alice_bot, settings):
    document = queued_text_document(alice_bot)
    services.document_ingest(document_id=document.pk, claim_token="run-1")  # claimed (and finished)
    Document.objects.filter(pk=document.pk).update(status="processing", claim_token="run-1")
    now = timezone.now()
    # What the task does before `self.retry(countdown=30)`: the retry (same task id) will take it back.
    assert services.document_claim_renew(
        document_id=document.pk, claim_token="run-1", until=now + timedelta(seconds=30)
    )
    stale = settings.KNOWLEDGE_CLAIM_STALE_SECONDS

    assert services.documents_requeue_stale(now=now + timedelta(seconds=stale + 1)) == 0
    assert services.documents_requeue_stale(now=now + timedelta(seconds=30 + stale + 1)) == 1
    assert Document.objects.get(pk=document.pk).status == "queued"


def test_a_claim_is_stale_after_a_minute_without_heartbeat_not_after_the_task_time_limit(alice_bot, settings):
    document = queued_text_document(alice_bot)
    Document.objects.filter(pk=document.pk).update(
        status="processing", claim_token="dead", claimed_at=timezone.now(), attempts=1
    )
    later = timezone.now() + timedelta(seconds=settings.KNOWLEDGE_CLAIM_STALE_SECONDS + 1)
    assert settings.KNOWLEDGE_CLAIM_STALE_SECONDS + 1 < 120 < settings.KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS

    assert services.documents_requeue_stale(now=later) == 1
    assert Document.objects.get(pk=document.pk).status == "queued"


def test_a_queued_document_whose_message_waits_in_the_broker_is_left_alone(alice_bot, settings):
    waiting = queued_text_document(alice_bot, title="waiting")
    lost = queued_text_document(alice_bot, text="Its message was lost.", title="lost")
    later = timezone.now() + timedelta(seconds=settings.KNOWLEDGE_QUEUED_STALE_SECONDS + 1)

    assert services.documents_requeue_stale(now=later, waiting={waiting.pk}) == 1
    assert Document.objects.get(pk=lost.pk).updated_at > Document.objects.get(pk=waiting.pk).updated_at


def test_a_document_whose_runs_keep_dying_is_failed_with_a_reason_not_requeued_forever(alice_bot, settings):
    document = queued_text_document(alice_bot)
    Document.objects.filter(pk=document.pk).update(
        status="processing",
        claim_token="dead",
        claimed_at=timezone.now(),
        attempts=settings.KNOWLEDGE_INGEST_MAX_RETRIES + 1,
    )
    later = timezone.now() + timedelta(seconds=settings.KNOWLEDGE_CLAIM_STALE_SECONDS + 1)

    assert services.documents_requeue_stale(now=later) == 1

    document.refresh_from_db()
    assert (document.status, document.error_code) == ("failed", "ingestion_abandoned")
    assert Event.objects.filter(type="document.failed", data__id=document.public_id).exists()


@pytest.mark.slow
def test_an_upload_while_the_broker_is_down_is_accepted_and_left_to_the_sweep(transactional_db):
    # Before: the on-commit enqueue raised into a request whose document was already created (a 500).
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    broker_down = f"redis://127.0.0.1:{free_port()}/0"
    with uvicorn_server(CELERY_BROKER_URL=broker_down, CELERY_TASK_ALWAYS_EAGER="false") as base_url:
        started = time.monotonic()
        response = httpx.post(
            f"{base_url}/v1/knowledge/upload",
            json={"bot_id": bot.public_id, "title": "Hours", "text": "We open at nine."},
            headers={"Authorization": f"Bearer {actor.key}"},
            timeout=30,
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert elapsed < 5
    assert Document.objects.get(public_id=response.json()["id"]).status == "queued"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="a real Celery worker needs REDIS_URL (the broker)")
def test_a_running_ingestion_renews_its_claim(transactional_db, settings, tmp_path):
    from knowledge.tests.test_worker import MANUAL, document_state, wait_for

    settings.MEDIA_ROOT = str(tmp_path / "media")
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge("ingestion")
    try:
        with celery_worker(
            queues="ingestion",
            MEDIA_ROOT=settings.MEDIA_ROOT,
            KNOWLEDGE_EMBED_BATCH_SIZE="1",
            KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS="0.5",
            KNOWLEDGE_CLAIM_STALE_SECONDS="2",
        ):
            document = services.document_create_from_text(tenant=actor.tenant, bot=bot, title="Manual", text=MANUAL)
            claimed = wait_for(lambda: document_state(document.pk).claimed_at, 60, 0.02, "the claim")
            # The heartbeat moves the claim forward while the run embeds (before: it stayed at the claim time).
            renewed = wait_for(
                lambda: (
                    (d := document_state(document.pk)).status == "processing"
                    and d.claimed_at > claimed + timedelta(seconds=0.4)
                    and d
                ),
                30,
                0.05,
                "a heartbeat",
            )
            assert renewed.claim_token
            wait_for(lambda: document_state(document.pk).status == "ready", 120, what="ingestion")
    finally:
        celery_app.conf.task_always_eager = True
