"""The knowledge API end to end: upload → (eager) ingestion → documents → search."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bothero.testing.factories import BotFactory
from knowledge.models import Chunk, Document
from knowledge.tests import documents, samples
from webhooks.models import Event


def search(client, bot, query, **fields):
    response = client.post("/v1/knowledge/search", {"bot_id": bot.public_id, "query": query, **fields}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_a_pdf_docx_html_and_csv_become_ready_and_search_finds_the_right_passage_in_each(alice, alice_bot, upload):
    uploads = {
        "pdf": upload(alice_bot, "warranty.pdf", documents.warranty_pdf()),
        "docx": upload(alice_bot, "shipping.docx", documents.shipping_docx()),
        "html": upload(alice_bot, "stores.html", documents.STORES_HTML),
        "csv": upload(alice_bot, "prices.csv", documents.PRICES_CSV),
    }
    ids = {}
    for kind, response in uploads.items():
        assert response.status_code == 202, response.content
        ids[kind] = response.json()["id"]
        detail = alice.client.get(f"/v1/knowledge/documents/{ids[kind]}").json()
        assert detail["status"] == "ready", detail
        assert detail["progress"] == 100
        assert detail["chunk_count"] >= 1
        assert detail["error"] is None

    questions = {
        "pdf": ("How long is the warranty on a widget?", "two-year warranty"),
        "docx": ("Do I have to pay for delivery?", "ship free"),
        "html": ("Where is your flagship shop?", "12 Harbour Street"),
        "csv": ("How much does the Widget Pro cost?", "49.00"),
    }
    for kind, (question, expected_text) in questions.items():
        best = search(alice.client, alice_bot, question)[0]
        assert best["document_id"] == ids[kind], (question, best)
        assert expected_text in best["text"]


def test_the_upload_answers_202_with_the_queued_document(alice, alice_bot, django_capture_on_commit_callbacks):
    # Without running the on-commit ingestion, the client sees exactly what the 202 says.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice.client.post(
            "/v1/knowledge/upload",
            {
                "bot_id": alice_bot.public_id,
                "file": SimpleUploadedFile("faq.md", documents.FAQ_MARKDOWN),
                "metadata": json.dumps({"team": "support"}),
            },
            format="multipart",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["id"].startswith("doc_")
    assert body["object"] == "document"
    assert body["bot_id"] == alice_bot.public_id
    assert body["title"] == "faq.md"
    assert body["source_type"] == "file"
    assert body["filename"] == "faq.md"
    assert body["content_type"] == "text/markdown"
    assert body["size_bytes"] == len(documents.FAQ_MARKDOWN)
    assert len(body["content_sha256"]) == 64
    assert body["status"] == "queued"
    assert body["progress"] == 0
    assert body["chunk_count"] == 0
    assert body["error"] is None
    assert body["metadata"] == {"team": "support"}
    assert body["ready_at"] is None
    assert body["duplicate"] is False
    assert len(callbacks) == 1, "the ingestion is queued after commit"


def test_the_same_content_uploaded_twice_to_one_bot_gives_back_the_existing_document(alice, alice_bot, upload):
    first = upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN)
    second = upload(alice_bot, "renamed.md", documents.FAQ_MARKDOWN)

    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["duplicate"] is True
    assert Document.objects.filter(bot=alice_bot).count() == 1


def test_the_same_content_may_go_to_two_different_bots(alice, alice_bot, upload):
    other_bot = BotFactory(tenant=alice.tenant)
    assert upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN).status_code == 202
    assert upload(other_bot, "faq.md", documents.FAQ_MARKDOWN).status_code == 202


def test_a_text_document_is_created_from_json(alice, alice_bot, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.post(
            "/v1/knowledge/upload",
            {"bot_id": alice_bot.public_id, "title": "Returns", "text": "Returns are accepted for 60 days."},
            format="json",
        )
    assert response.status_code == 202, response.content
    assert response.json()["source_type"] == "text"
    assert response.json()["filename"] is None
    document = Document.objects.get(public_id=response.json()["id"])
    assert document.status == "ready"
    assert search(alice.client, alice_bot, "How long can I return items?")[0]["document_id"] == document.public_id


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("binary.txt", samples.random_binary(), 415, "unsupported_file_type"),
        ("archive.docx", samples.plain_zip(), 415, "unsupported_file_type"),
        ("empty.txt", b"", 400, None),
        ("blank.txt", b"   \n\n  ", 400, "empty_file"),
    ],
)
def test_a_file_that_is_not_a_document_is_refused_up_front(alice, alice_bot, upload, name, data, status, code):
    response = upload(alice_bot, name, data)

    assert response.status_code == status, response.content
    assert response.json()["error"]["param"] == "file"
    if code:
        assert response.json()["error"]["code"] == code
    assert not Document.objects.exists()


def test_a_file_over_the_size_limit_is_refused_with_413(alice, alice_bot, upload, settings):
    settings.MAX_UPLOAD_BYTES = 100

    response = upload(alice_bot, "big.md", b"# Big\n\n" + b"word " * 100)

    assert response.status_code == 413
    assert response.json()["error"]["code"] in {"file_too_large", "request_too_large"}
    assert not Document.objects.exists()


def test_metadata_must_be_a_json_object(alice, alice_bot, upload):
    for metadata in ("[1, 2]", "{not json"):
        response = upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN, metadata=metadata)

        assert response.status_code == 400
        assert response.json()["error"]["param"] == "metadata"
        assert response.json()["error"]["code"] == "invalid_metadata"


def test_an_upload_without_file_url_or_text_is_a_400(alice, alice_bot):
    response = alice.client.post("/v1/knowledge/upload", {"bot_id": alice_bot.public_id}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_param"


def test_a_url_to_a_private_address_is_refused(alice, alice_bot, settings):
    settings.ALLOW_PRIVATE_URLS = False

    response = alice.client.post(
        "/v1/knowledge/upload", {"bot_id": alice_bot.public_id, "url": "http://127.0.0.1:9/secret"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_host_not_allowed"
    assert response.json()["error"]["param"] == "url"


def test_the_document_limit_of_the_plan_gives_403(alice, alice_bot, upload):
    alice.tenant.plan.max_documents = 1
    alice.tenant.plan.save()
    assert upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN).status_code == 202

    response = upload(alice_bot, "prices.csv", documents.PRICES_CSV)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "plan_limit_reached"
    assert Document.objects.filter(tenant=alice.tenant).count() == 1


def test_the_storage_limit_of_the_plan_gives_403_and_keeps_no_file(alice, alice_bot, upload, media_root):
    alice.tenant.plan.max_storage_mb = 1
    alice.tenant.plan.save()
    big = b"# Notes\n\n" + b"lorem ipsum dolor sit amet " * 40000  # about 1.1 MB

    response = upload(alice_bot, "notes.md", big)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "plan_limit_reached"
    assert not [path for path in Path(media_root).rglob("*") if path.is_file()]


def test_documents_are_listed_newest_first_with_filters_and_a_cursor(alice, alice_bot, upload):
    other_bot = BotFactory(tenant=alice.tenant)
    first = upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN).json()["id"]
    second = upload(alice_bot, "prices.csv", documents.PRICES_CSV).json()["id"]
    upload(other_bot, "stores.html", documents.STORES_HTML)
    failed = upload(alice_bot, "broken.pdf", samples.pdf_truncated()).json()["id"]

    page = alice.client.get("/v1/knowledge/documents", {"bot_id": alice_bot.public_id, "limit": 2}).json()
    assert page["object"] == "list"
    assert [d["id"] for d in page["data"]] == [failed, second]
    assert page["has_more"] is True
    rest = alice.client.get(
        "/v1/knowledge/documents", {"bot_id": alice_bot.public_id, "limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert [d["id"] for d in rest["data"]] == [first]
    assert rest["has_more"] is False

    only_failed = alice.client.get("/v1/knowledge/documents", {"status": "failed"}).json()
    assert [d["id"] for d in only_failed["data"]] == [failed]
    assert len(alice.client.get("/v1/knowledge/documents").json()["data"]) == 4


def test_an_unknown_status_filter_is_a_400(alice):
    response = alice.client.get("/v1/knowledge/documents", {"status": "done"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "status"


def test_deleting_a_document_removes_its_chunks_and_its_file(alice, alice_bot, upload, media_root):
    document_id = upload(alice_bot, "warranty.pdf", documents.warranty_pdf()).json()["id"]
    document = Document.objects.get(public_id=document_id)
    stored = Path(document.file.path)
    assert stored.exists()
    assert Chunk.objects.filter(document=document).exists()

    response = alice.client.delete(f"/v1/knowledge/{document_id}")

    # Like every DELETE of an object (bots, webhooks, conversations): 200 with the deleted object's id.
    assert response.status_code == 200
    assert response.json() == {"id": document_id, "object": "document", "deleted": True}
    assert not Document.objects.filter(public_id=document_id).exists()
    assert not Chunk.objects.filter(document_id=document.pk).exists()
    assert alice.client.get(f"/v1/knowledge/documents/{document_id}").status_code == 404
    assert search(alice.client, alice_bot, "warranty") == []


def test_the_stored_file_is_removed_after_the_delete_commits(
    alice, alice_bot, upload, django_capture_on_commit_callbacks
):
    document_id = upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN).json()["id"]
    stored = Path(Document.objects.get(public_id=document_id).file.path)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.delete(f"/v1/knowledge/documents/{document_id}")

    assert response.status_code == 200
    assert response.json() == {"id": document_id, "object": "document", "deleted": True}
    assert not stored.exists()
    assert not stored.parent.exists()


def test_reindexing_gives_the_same_chunks_again_never_duplicates(
    alice, alice_bot, upload, django_capture_on_commit_callbacks
):
    document_id = upload(alice_bot, "shipping.docx", documents.shipping_docx()).json()["id"]
    document = Document.objects.get(public_id=document_id)
    before = list(Chunk.objects.filter(document=document).order_by("position").values_list("position", "text"))

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.post(f"/v1/knowledge/documents/{document_id}/reindex")

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    document.refresh_from_db()
    assert document.status == "ready"
    after = list(Chunk.objects.filter(document=document).order_by("position").values_list("position", "text"))
    assert after == before
    assert document.chunk_count == len(before)


def test_a_failed_document_says_why(alice, alice_bot, upload):
    response = upload(alice_bot, "broken.pdf", samples.pdf_truncated())

    assert response.status_code == 202
    detail = alice.client.get(f"/v1/knowledge/documents/{response.json()['id']}").json()
    assert detail["status"] == "failed"
    assert detail["error"]["code"] == "invalid_document"
    assert detail["error"]["message"]
    assert detail["chunk_count"] == 0


def test_ready_and_failed_documents_emit_events_with_the_document(alice, alice_bot, upload):
    ready_id = upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN).json()["id"]
    failed_id = upload(alice_bot, "broken.pdf", samples.pdf_truncated()).json()["id"]

    ready = Event.objects.get(tenant=alice.tenant, type="document.ready")
    failed = Event.objects.get(tenant=alice.tenant, type="document.failed")
    assert ready.data["id"] == ready_id
    assert ready.data["status"] == "ready"
    assert ready.data["object"] == "document"
    assert failed.data["id"] == failed_id
    assert failed.data["error"]["code"] == "invalid_document"


def test_search_answers_in_the_documented_shape(alice, alice_bot, upload):
    document_id = upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN).json()["id"]

    response = alice.client.post(
        "/v1/knowledge/search",
        {"bot_id": alice_bot.public_id, "query": "Do gift cards expire?", "top_k": 1},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "knowledge.search_result"
    assert body["bot_id"] == alice_bot.public_id
    (passage,) = body["data"]
    assert passage["document_id"] == document_id
    assert passage["chunk_id"].startswith("chk_")
    assert passage["title"] == "faq.md"
    assert passage["heading"] == "Gift cards"
    assert passage["position"] == 0
    assert 0 < passage["score"] <= 1
    assert "never expire" in passage["snippet"]


def test_search_lists_passages_in_the_order_of_the_score_it_shows(alice, alice_bot, upload):
    upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN)
    upload(alice_bot, "notes.md", b"# Batteries\n\nCharge the battery fully before the first use.\n\n"
           b"# Gift wrapping\n\nWe wrap gifts in recycled paper for free.\n")  # fmt: skip

    for query in ("Do gift cards expire?", "Can you wrap a present?", "battery", "opening hours on Sunday"):
        response = alice.client.post(
            "/v1/knowledge/search",
            {"bot_id": alice_bot.public_id, "query": query, "top_k": 10, "min_score": 0},
            format="json",
        )
        assert response.status_code == 200
        scores = [passage["score"] for passage in response.json()["data"]]
        assert len(scores) > 1
        assert scores == sorted(scores, reverse=True), (query, scores)


def test_search_validates_its_input(alice, alice_bot):
    response = alice.client.post(
        "/v1/knowledge/search", {"bot_id": alice_bot.public_id, "query": "x", "top_k": 0}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "top_k"
    response = alice.client.post("/v1/knowledge/search", {"bot_id": alice_bot.public_id}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "query"


# ---------------------------------------------------------------- other tenants


def test_charlie_gets_404_for_alices_document_everywhere(alice, alice_bot, charlie, upload):
    document_id = upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN).json()["id"]

    for response in (
        charlie.client.get(f"/v1/knowledge/documents/{document_id}"),
        charlie.client.delete(f"/v1/knowledge/documents/{document_id}"),
        charlie.client.delete(f"/v1/knowledge/{document_id}"),
        charlie.client.post(f"/v1/knowledge/documents/{document_id}/reindex"),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "document_not_found"
    assert Document.objects.get(public_id=document_id).status == "ready"


def test_charlie_gets_404_for_alices_bot_in_upload_list_and_search(alice, alice_bot, charlie, upload):
    upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN)

    responses = [
        upload(alice_bot, "prices.csv", documents.PRICES_CSV, client=charlie.client),
        charlie.client.post(
            "/v1/knowledge/upload", {"bot_id": alice_bot.public_id, "title": "x", "text": "hello"}, format="json"
        ),
        charlie.client.get("/v1/knowledge/documents", {"bot_id": alice_bot.public_id}),
        charlie.client.post(
            "/v1/knowledge/search", {"bot_id": alice_bot.public_id, "query": "gift cards"}, format="json"
        ),
    ]
    for response in responses:
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "bot_not_found"
    assert charlie.client.get("/v1/knowledge/documents").json()["data"] == []


def test_search_never_returns_another_bots_or_tenants_chunks(alice, alice_bot, charlie, charlie_bot, upload):
    sister_bot = BotFactory(tenant=alice.tenant)
    upload(alice_bot, "faq.md", documents.FAQ_MARKDOWN)
    upload(sister_bot, "prices.csv", documents.PRICES_CSV)
    upload(charlie_bot, "stores.html", documents.STORES_HTML, client=charlie.client)
    own = set(Chunk.objects.filter(bot=alice_bot).values_list("public_id", flat=True))

    # Questions answered only by the other bots' documents, and a broad one.
    for query in ("How much does the Widget Pro cost?", "flagship store Harbour Street", "widget store price gift"):
        results = search(alice.client, alice_bot, query, top_k=50)
        assert {passage["chunk_id"] for passage in results} <= own, query


def test_every_knowledge_endpoint_is_in_the_openapi_schema(anonymous_client):
    paths = anonymous_client.get("/v1/openapi.json").json()["paths"]

    assert set(paths["/v1/knowledge/upload"]) >= {"post"}
    assert set(paths["/v1/knowledge/search"]) >= {"post"}
    assert set(paths["/v1/knowledge/documents"]) >= {"get"}
    assert set(paths["/v1/knowledge/documents/{id}"]) >= {"get", "delete"}
    assert set(paths["/v1/knowledge/documents/{id}/reindex"]) >= {"post"}
    assert set(paths["/v1/knowledge/{id}"]) >= {"delete"}
    upload = paths["/v1/knowledge/upload"]["post"]
    assert set(upload["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"200", "202", "413", "415"} <= set(upload["responses"])
