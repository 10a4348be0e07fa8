"""Without a broker, ingestion runs on a thread after the request has answered: an upload's "queued" is true."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bothero.testing.factories import BotFactory
from conftest import make_actor
from knowledge.models import Document
from knowledge.tests import samples


@pytest.mark.django_db(transaction=True)
def test_an_upload_without_a_broker_answers_queued_and_is_ingested_on_a_thread(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.KNOWLEDGE_INGEST_IN_THREAD = True  # as with no REDIS_URL (Celery eager, as in these tests)
    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)

    response = actor.client.post(
        "/v1/knowledge/upload",
        {"bot_id": bot.public_id, "file": SimpleUploadedFile("faq.md", samples.MARKDOWN)},
        format="multipart",
    )

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"  # answered before the ingestion, not after it
    document = Document.objects.get(public_id=response.json()["id"])
    deadline = time.monotonic() + 120
    while document.status not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        document.refresh_from_db()
    assert document.status == "ready", document.error_message
    assert document.chunk_count > 0
