"""Ingestion by real Celery worker processes on Redis, including a worker killed half-way.

These need REDIS_URL (the broker); without it they are skipped. The worker
processes use the test database (committed rows only: `transactional_db`).
"""

import os
import signal
import time
from pathlib import Path

import pytest

from bothero.celery import app as celery_app
from bothero.testing.factories import BotFactory, plan
from bothero.testing.processes import celery_worker
from conftest import make_actor
from knowledge import services
from knowledge.models import Chunk, Document
from knowledge.tests import documents

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="a real Celery worker needs REDIS_URL (the broker)"),
]

# Long enough that embedding takes a few seconds on 2 cores, so a kill lands mid-run.
MANUAL = "\n\n".join(
    f"## Chapter {n}\n\n"
    + " ".join(
        f"Chapter {n}, step {m}: tighten widget bolt {m} to {n + m} newton metres, then check the seal."
        for m in range(30)
    )
    for n in range(5)
)


@pytest.fixture
def shared_media(settings, tmp_path):
    """One MEDIA_ROOT for this process and the workers."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings.MEDIA_ROOT


@pytest.fixture
def broker(transactional_db):
    """Send tasks to the Redis broker instead of running them eagerly, on an empty `ingestion` queue."""
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge("ingestion")
    yield
    celery_app.conf.task_always_eager = True


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def document_state(pk: int) -> Document:
    return Document.objects.get(pk=pk)


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The parent pid is the 2nd field after the parenthesised command name.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def test_a_real_worker_ingests_an_upload_from_the_api(broker, shared_media):
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    with celery_worker(queues="ingestion", MEDIA_ROOT=shared_media):
        response = actor.client.post(
            "/v1/knowledge/upload",
            {"bot_id": bot.public_id, "file": _upload("warranty.pdf", documents.warranty_pdf())},
            format="multipart",
        )
        assert response.status_code == 202
        pk = Document.objects.get(public_id=response.json()["id"]).pk
        document = wait_for(
            lambda: (d := document_state(pk)).status in ("ready", "failed") and d, 60, what="the document to be ready"
        )
    assert document.status == "ready", document.error_message
    assert document.chunk_count == Chunk.objects.filter(document_id=pk).count() >= 2


def test_a_transient_download_error_is_retried_by_the_worker(broker, shared_media, web_server):
    web_server.route("/flaky.html", (503, "text/plain", b"busy"), (200, "text/html", documents.STORES_HTML))
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    with celery_worker(
        queues="ingestion",
        MEDIA_ROOT=shared_media,
        ALLOW_PRIVATE_URLS="true",
        KNOWLEDGE_INGEST_RETRY_DELAY_SECONDS="0.5",
    ):
        document = services.document_create_from_url(
            tenant=actor.tenant, bot=bot, url=f"{web_server.base_url}/flaky.html"
        )
        document = wait_for(
            lambda: (d := document_state(document.pk)).status in ("ready", "failed") and d, 60, what="ingestion"
        )
    assert document.status == "ready", document.error_message
    assert document.attempts == 2
    assert web_server.requests == ["/flaky.html", "/flaky.html"]


def test_a_worker_killed_mid_ingestion_gets_its_task_redelivered_and_the_document_ends_ready_once(broker, shared_media):
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    with celery_worker(queues="ingestion", MEDIA_ROOT=shared_media, KNOWLEDGE_EMBED_BATCH_SIZE="2") as worker:
        document = services.document_create_from_text(tenant=actor.tenant, bot=bot, title="Manual", text=MANUAL)
        # Embedding has started (progress past parsing): kill the process running the task.
        wait_for(lambda: document_state(document.pk).progress >= 31, 60, 0.02, "embedding to start")
        (pool_process,) = child_pids(worker.pid)
        os.kill(pool_process, signal.SIGKILL)
        killed_at = document_state(document.pk)
        assert killed_at.status == "processing"
        assert not Chunk.objects.filter(document_id=document.pk).exists()

        # acks_late + reject_on_worker_lost: the message goes back to the queue, a new pool
        # process picks it up under the same task id and takes the claim back.
        finished = wait_for(
            lambda: (d := document_state(document.pk)).status in ("ready", "failed") and d, 120, what="redelivery"
        )
        log = Path(worker.log_path).read_text()
    assert finished.status == "ready", finished.error_message
    assert finished.attempts == 2
    assert "WorkerLostError" in log or "SIGKILL" in log
    positions = list(Chunk.objects.filter(document_id=document.pk).values_list("position", flat=True))
    assert sorted(positions) == list(range(finished.chunk_count))
    assert finished.chunk_count > 8


def test_after_a_whole_worker_is_killed_the_sweep_hands_the_document_to_a_new_worker(broker, shared_media, settings):
    # SIGKILL of the whole worker leaves its message unacknowledged in Redis until the
    # broker's visibility timeout (an hour); the beat sweep does not wait that long for
    # a claim older than the task's time limit. The sweep is run here with a clock moved forward.
    from datetime import timedelta

    from django.utils import timezone

    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    with celery_worker(queues="ingestion", MEDIA_ROOT=shared_media, KNOWLEDGE_EMBED_BATCH_SIZE="2") as worker:
        document = services.document_create_from_text(tenant=actor.tenant, bot=bot, title="Manual", text=MANUAL)
        wait_for(lambda: document_state(document.pk).progress >= 31, 60, 0.02, "embedding to start")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    assert document_state(document.pk).status == "processing"
    assert not Chunk.objects.filter(document_id=document.pk).exists()

    with celery_worker(queues="ingestion", MEDIA_ROOT=shared_media):
        later = timezone.now() + timedelta(seconds=settings.KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS + 61)
        assert services.documents_requeue_stale(now=later) == 1
        finished = wait_for(
            lambda: (d := document_state(document.pk)).status in ("ready", "failed") and d, 120, what="the new worker"
        )
    assert finished.status == "ready", finished.error_message
    positions = list(Chunk.objects.filter(document_id=document.pk).values_list("position", flat=True))
    assert sorted(positions) == list(range(finished.chunk_count))


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_the_demo_with_a_broker_but_no_worker_ingests_the_faq_itself(broker, shared_media):
    from io import StringIO

    from django.core.management import call_command

    plan("legend")  # transactional tests flush the seeded plans

    call_command("demo", stdout=StringIO())

    (document,) = Document.objects.filter(title="Acme Widgets FAQ")
    assert document.status == "ready"


def test_the_demo_with_a_running_worker_leaves_the_faq_to_it(broker, shared_media):
    from io import StringIO

    from django.core.management import call_command

    plan("legend")  # transactional tests flush the seeded plans

    with celery_worker(queues="ingestion", MEDIA_ROOT=shared_media) as worker:
        call_command("demo", stdout=StringIO())
        log = Path(worker.log_path).read_text()

    (document,) = Document.objects.filter(title="Acme Widgets FAQ")
    assert document.status == "ready"
    assert "knowledge.ingest_document" in log
    assert "succeeded" in log
    assert "'ready'" in log
