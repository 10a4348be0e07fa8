"""Ingestion rules, through the services and the task: claims, idempotency, retries, URLs, hostile files."""

import resource
import time
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from bothero.testing.factories import BotFactory, DocumentFactory
from knowledge import services
from knowledge.models import Chunk, Document
from knowledge.tasks import ingest_document
from knowledge.tests import documents, samples
from webhooks.models import Event

LONG_TEXT = "\n\n".join(
    f"## Section {n}\n\n"
    + " ".join(f"Paragraph {n} sentence {m} explains widget detail number {m}." for m in range(20))
    for n in range(3)
)


def queued_text_document(bot, text=LONG_TEXT, title="Manual"):
    """A text document whose on-commit ingestion has not run (the `db` fixture never commits)."""
    return services.document_create_from_text(tenant=bot.tenant, bot=bot, title=title, text=text)


def chunk_rows(document):
    return list(Chunk.objects.filter(document=document).order_by("position").values_list("position", "text"))


def test_a_document_is_claimed_processed_and_ready_with_progress_100(alice_bot):
    document = queued_text_document(alice_bot)

    finished = services.document_ingest(document_id=document.pk, claim_token="run-1")

    assert finished.status == "ready"
    document.refresh_from_db()
    assert document.progress == 100
    assert document.attempts == 1
    assert document.chunk_count == len(chunk_rows(document)) >= 3
    assert document.embedding_model == "all-MiniLM-L6-v2-int8+bge-small-en-int8"
    assert document.embedding_dimension == 384
    assert document.ready_at is not None
    positions = [position for position, _ in chunk_rows(document)]
    assert positions == list(range(len(positions)))


def test_running_the_task_again_on_a_ready_document_changes_nothing(alice_bot):
    document = queued_text_document(alice_bot)
    ingest_document.apply(args=(document.pk,))
    chunk_ids = list(Chunk.objects.filter(document=document).values_list("public_id", flat=True))

    result = ingest_document.apply(args=(document.pk,))

    assert result.get() is None
    assert list(Chunk.objects.filter(document=document).values_list("public_id", flat=True)) == chunk_ids


def test_a_redelivered_task_takes_its_claim_back_and_writes_each_chunk_once(alice_bot):
    # The first run of task "T" died after claiming (a worker killed mid-embedding).
    # Even a stray chunk left behind is replaced, not added to.
    document = queued_text_document(alice_bot)
    reference = queued_text_document(BotFactory(tenant=alice_bot.tenant))
    services.document_ingest(document_id=reference.pk, claim_token="reference")
    Document.objects.filter(pk=document.pk).update(status="processing", claim_token="T", claimed_at=timezone.now())
    Chunk.objects.create(
        tenant=alice_bot.tenant, bot=alice_bot, document=document, position=0, text="stray", embedding=np.ones(384)
    )

    finished = services.document_ingest(document_id=document.pk, claim_token="T")

    assert finished.status == "ready"
    assert [text for _, text in chunk_rows(document)] == [text for _, text in chunk_rows(reference)]
    assert finished.chunk_count == len(chunk_rows(reference))


def test_a_second_run_leaves_a_document_claimed_by_a_live_run_alone(alice_bot):
    document = queued_text_document(alice_bot)
    Document.objects.filter(pk=document.pk).update(status="processing", claim_token="A", claimed_at=timezone.now())

    assert services.document_ingest(document_id=document.pk, claim_token="B") is None

    document.refresh_from_db()
    assert (document.status, document.claim_token) == ("processing", "A")
    assert not Chunk.objects.filter(document=document).exists()


def test_a_claim_older_than_the_task_time_limit_is_taken_over(alice_bot, settings):
    document = queued_text_document(alice_bot)
    long_ago = timezone.now() - timedelta(seconds=settings.KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS + 61)
    Document.objects.filter(pk=document.pk).update(status="processing", claim_token="dead", claimed_at=long_ago)

    assert services.document_ingest(document_id=document.pk, claim_token="B").status == "ready"


def test_the_sweep_requeues_dead_claims_and_lost_messages(alice_bot, settings, django_capture_on_commit_callbacks):
    dead = queued_text_document(alice_bot, title="dead")
    lost = queued_text_document(alice_bot, text="Lost messages are sent again.", title="lost")
    live = queued_text_document(alice_bot, text="Someone is working on this one.", title="live")
    now = timezone.now()
    Document.objects.filter(pk=dead.pk).update(
        status="processing",
        claim_token="dead",
        claimed_at=now - timedelta(seconds=settings.KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS + 61),
    )
    Document.objects.filter(pk=lost.pk).update(
        updated_at=now - timedelta(seconds=settings.KNOWLEDGE_QUEUED_STALE_SECONDS + 1)
    )
    Document.objects.filter(pk=live.pk).update(status="processing", claim_token="live", claimed_at=now)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.documents_requeue_stale() == 2

    statuses = dict(Document.objects.values_list("title", "status"))
    assert statuses == {"dead": "ready", "lost": "ready", "live": "processing"}


def test_a_reindexed_document_leaves_search_until_it_is_ready_again(alice, alice_bot, add_text):
    from knowledge.selectors import search

    document = add_text(alice_bot, "Gift cards", "Gift cards never expire.")
    assert search(tenant=alice.tenant, bot=alice_bot, query="gift cards")

    services.document_reindex(document=document)  # its ingestion is queued on commit, which never comes here

    assert search(tenant=alice.tenant, bot=alice_bot, query="gift cards") == []
    document.refresh_from_db()
    assert (document.status, document.chunk_count) == ("queued", 0)


@pytest.mark.django_db(transaction=True)
def test_a_run_that_lost_its_claim_mid_way_writes_nothing(web_server):
    # While the run downloads the page, someone reindexes the document (its claim is reset).
    from conftest import make_actor

    actor = make_actor()
    bot = BotFactory(tenant=actor.tenant)
    web_server.route("/page", (200, "text/html", documents.STORES_HTML))
    # Created as a row only: in this committing test the service's on-commit ingestion would run at once.
    document = DocumentFactory(
        tenant=actor.tenant, bot=bot, title="page", source_type="url", source_url=f"{web_server.base_url}/page"
    )
    web_server.on_request = lambda path: Document.objects.filter(pk=document.pk).update(claim_token="", status="queued")

    assert services.document_ingest(document_id=document.pk, claim_token="slow") is None

    document.refresh_from_db()
    assert document.status == "queued"
    assert not Chunk.objects.filter(document=document).exists()


# ---------------------------------------------------------------- URLs


def test_a_url_is_downloaded_parsed_and_ready(alice, alice_bot, web_server, django_capture_on_commit_callbacks):
    web_server.route("/stores.html", (200, "text/html", documents.STORES_HTML))
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.post(
            "/v1/knowledge/upload",
            {"bot_id": alice_bot.public_id, "url": f"{web_server.base_url}/stores.html"},
            format="json",
        )
    assert response.status_code == 202, response.content
    assert response.json()["source_type"] == "url"

    document = Document.objects.get(public_id=response.json()["id"])
    assert document.status == "ready", document.error_message
    assert document.filename == "stores.html"
    assert document.content_type == "text/html"
    assert document.size_bytes == len(documents.STORES_HTML)
    assert document.file.read() == documents.STORES_HTML
    assert "12 Harbour Street" in " ".join(text for _, text in chunk_rows(document))

    again = alice.client.post(
        "/v1/knowledge/upload",
        {"bot_id": alice_bot.public_id, "url": f"{web_server.base_url}/stores.html"},
        format="json",
    )
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == document.public_id


def test_a_url_with_content_the_bot_already_has_fails_as_a_duplicate(alice_bot, web_server, add_text):
    web_server.route("/copy.txt", (200, "text/plain", b"Gift cards never expire."))
    original = add_text(alice_bot, "Gift cards", "Gift cards never expire.")
    document = services.document_create_from_url(
        tenant=alice_bot.tenant, bot=alice_bot, url=f"{web_server.base_url}/copy.txt"
    )

    failed = services.document_ingest(document_id=document.pk, claim_token="t")

    assert failed.status == "failed"
    assert failed.error_code == "duplicate_document"
    assert original.public_id in failed.error_message


def test_a_url_answering_404_fails_for_good(alice_bot, web_server):
    document = services.document_create_from_url(
        tenant=alice_bot.tenant, bot=alice_bot, url=f"{web_server.base_url}/missing"
    )

    result = ingest_document.apply(args=(document.pk,))

    assert result.get() == "failed"
    document.refresh_from_db()
    assert (document.status, document.error_code) == ("failed", "fetch_failed")
    assert "404" in document.error_message
    assert Event.objects.filter(type="document.failed", data__id=document.public_id).exists()


def test_a_transient_error_without_a_broker_to_retry_on_fails_with_its_reason(alice_bot, web_server):
    web_server.route("/flaky", (503, "text/plain", b"try later"))
    document = services.document_create_from_url(
        tenant=alice_bot.tenant, bot=alice_bot, url=f"{web_server.base_url}/flaky"
    )

    assert ingest_document.apply(args=(document.pk,)).get() == "failed"

    document.refresh_from_db()
    assert document.error_code == "fetch_failed"
    assert "503" in document.error_message


def test_a_download_over_the_storage_left_on_the_plan_fails(alice, alice_bot, web_server):
    alice.tenant.plan.max_storage_mb = 1
    alice.tenant.plan.save()
    web_server.route("/big.txt", (200, "text/plain", b"lorem ipsum " * 100_000))
    document = services.document_create_from_url(
        tenant=alice.tenant, bot=alice_bot, url=f"{web_server.base_url}/big.txt"
    )

    failed = services.document_ingest(document_id=document.pk, claim_token="t")

    assert (failed.status, failed.error_code) == ("failed", "plan_limit_reached")


# ---------------------------------------------------------------- hostile and broken files


@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("truncated.pdf", samples.pdf_truncated, "invalid_document"),
        ("scan.pdf", samples.pdf_without_text, "empty_document"),
        ("bomb.docx", samples.docx_zip_bomb, "document_too_large"),
        ("hidden.docx", samples.docx_with_hidden_payload, "invalid_document"),
        ("parts.docx", samples.docx_with_too_many_parts, "document_too_large"),
        ("laughs.docx", samples.docx_billion_laughs, "invalid_document"),
        ("truncated.docx", samples.docx_truncated, "invalid_document"),
    ],
)
def test_a_hostile_or_broken_file_fails_clearly_in_bounded_time_and_memory(alice, alice_bot, upload, name, make, code):
    data = make()
    own_peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()

    response = upload(alice_bot, name, data)

    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.content
    detail = alice.client.get(f"/v1/knowledge/documents/{response.json()['id']}").json()
    assert detail["status"] == "failed"
    assert detail["error"]["code"] == code, detail["error"]
    assert elapsed < 15
    # Parsing happened in a child process: this process did not grow by what the file expands to.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - own_peak_before < 50 * 1024


def test_a_parse_that_needs_more_memory_than_allowed_is_stopped(alice_bot, settings):
    settings.KNOWLEDGE_PARSE_MEMORY_MB = 150
    page = b"<!DOCTYPE html><html><body><main>" + b"<div><p><b>x</b> y</p></div>" * 150_000 + b"</main></body></html>"
    document = services.document_create_from_file(
        tenant=alice_bot.tenant, bot=alice_bot, data=page, filename="huge.html"
    )

    started = time.monotonic()
    failed = services.document_ingest(document_id=document.pk, claim_token="t")

    assert (failed.status, failed.error_code) == ("failed", "parse_out_of_memory")
    assert time.monotonic() - started < 30


def test_a_parse_that_takes_too_long_is_stopped(alice_bot, settings):
    settings.KNOWLEDGE_PARSE_TIMEOUT_SECONDS = 0.01
    document = services.document_create_from_file(
        tenant=alice_bot.tenant, bot=alice_bot, data=documents.warranty_pdf(), filename="w.pdf"
    )

    failed = services.document_ingest(document_id=document.pk, claim_token="t")

    assert (failed.status, failed.error_code) == ("failed", "parse_timeout")


def test_a_missing_stored_file_fails_the_document(alice_bot):
    document = services.document_create_from_file(
        tenant=alice_bot.tenant, bot=alice_bot, data=documents.FAQ_MARKDOWN, filename="faq.md"
    )
    document.file.storage.delete(document.file.name)

    failed = services.document_ingest(document_id=document.pk, claim_token="t")

    assert (failed.status, failed.error_code) == ("failed", "file_missing")


# ---------------------------------------------------------------- reindex command and admin


def test_the_reindex_command_requeues_one_bots_documents_or_all(
    alice_bot, add_text, django_capture_on_commit_callbacks
):
    other_bot = BotFactory(tenant=alice_bot.tenant)
    mine = add_text(alice_bot, "a", "Alpha text.")
    theirs = add_text(other_bot, "b", "Beta text.")
    Document.objects.update(embedding_model="old-model")

    with django_capture_on_commit_callbacks(execute=True):
        call_command("reindex", "--bot", alice_bot.public_id)
    assert Document.objects.get(pk=mine.pk).embedding_model == "all-MiniLM-L6-v2-int8+bge-small-en-int8"
    assert Document.objects.get(pk=theirs.pk).embedding_model == "old-model"

    with django_capture_on_commit_callbacks(execute=True):
        call_command("reindex", "--all")
    assert set(Document.objects.values_list("embedding_model", "status")) == {
        ("all-MiniLM-L6-v2-int8+bge-small-en-int8", "ready")
    }

    with pytest.raises(CommandError):
        call_command("reindex", "--bot", "bot_nope")


def test_staff_can_reindex_documents_from_the_admin(
    admin_client, alice_bot, add_text, django_capture_on_commit_callbacks
):
    document = add_text(alice_bot, "a", "Alpha text.")
    Document.objects.update(embedding_model="old-model")

    listing = admin_client.get("/admin/knowledge/document/")
    assert listing.status_code == 200
    assert document.public_id in listing.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/knowledge/document/", {"action": "reindex", "_selected_action": [document.pk]}
        )

    assert response.status_code == 302
    document.refresh_from_db()
    assert (document.status, document.embedding_model) == ("ready", "all-MiniLM-L6-v2-int8+bge-small-en-int8")


def test_deleting_documents_from_the_admin_goes_through_the_service(admin_client, alice_bot, add_text):
    from knowledge.models import LexemeStat

    document = add_text(alice_bot, "a", "Alpha text.")

    response = admin_client.post(
        "/admin/knowledge/document/",
        {"action": "delete_selected", "_selected_action": [document.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert not Document.objects.filter(pk=document.pk).exists()
    assert LexemeStat.objects.get(bot=alice_bot, lexeme="").chunk_count == 0
