"""Website sources through the public API against a real website on loopback (knowledge.testing.site):
sitemaps (index, gzip), robots.txt, conditional re-syncs, a changed page, a removed page, a redirect loop,
a huge page, a slow page, crawling, plan limits, the SSRF guard and another tenant's 404s."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bothero.testing.factories import BotFactory, PlanFactory
from conftest import make_actor
from knowledge.models import Chunk, Document, WebsiteSource
from knowledge.tasks import sync_due_sources
from knowledge.testing.site import LocalSite, html_page
from webhooks.models import Event

PAGES = {
    "/hours": html_page("Opening hours", "We are open Monday to Friday from 9 to 5 and Saturdays from 10 to 2."),
    "/shipping": html_page("Shipping", "Standard shipping takes three to five business days."),
    "/returns": html_page("Returns", "Return any widget within thirty days for a refund."),
    "/contact": html_page("Contact", "Write to help@acme.example or call us during opening hours."),
}


@pytest.fixture
def site(settings):
    settings.ALLOW_PRIVATE_URLS = True
    settings.KNOWLEDGE_SOURCE_MAX_PAGE_BYTES = 200_000
    settings.KNOWLEDGE_SOURCE_PAGE_TIMEOUT_SECONDS = 1.0
    with LocalSite() as site:
        for path, html in PAGES.items():
            site.page(path, html)
        site.page("/private/staff", html_page("Staff only", "Internal."))
        site.robots("User-agent: *\nDisallow: /private/\n")
        site.redirect("/loop", "/loop2")
        site.redirect("/loop2", "/loop")
        site.page("/huge", html_page("Huge", "word " * 80_000))
        site.page("/slow", html_page("Slow", "Eventually."), delay=2.5)
        site.sitemap("/sitemap-a.xml", ["/hours", "/shipping", "/private/staff", "/loop"])
        site.sitemap("/sitemap-b.xml.gz", ["/returns", "/contact", "/huge", "/slow"], gzipped=True)
        site.sitemap_index("/sitemap.xml", ["/sitemap-a.xml", "/sitemap-b.xml.gz"])
        yield site


@pytest.fixture
def bot(alice):
    return BotFactory(tenant=alice.tenant)


@pytest.fixture
def sync(django_capture_on_commit_callbacks):
    """Run what a request queued after commit (the sync, then each page's ingestion) now, as a worker would."""

    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            response = call()
        assert response.status_code == 202, response.content
        return response.json()

    return run


def source_of(client, source_id: str) -> dict:
    response = client.get(f"/v1/knowledge/sources/{source_id}")
    assert response.status_code == 200
    return response.json()


def page_documents(source_id: str) -> dict[str, Document]:
    return {d.metadata["url"].rsplit("/", 1)[-1]: d for d in Document.objects.filter(metadata__source_id=source_id)}


def test_a_sitemap_source_makes_one_document_per_page_and_keeps_them_fresh(alice, bot, site, sync):
    created = sync(
        lambda: alice.client.post(
            "/v1/knowledge/sources",
            {"bot_id": bot.public_id, "type": "sitemap", "url": site.url("/sitemap.xml"), "refresh": "daily"},
            format="json",
        )
    )
    assert created["id"].startswith("src_")
    assert created["object"] == "website_source"
    source = source_of(alice.client, created["id"])
    assert source["status"] == "idle"
    result = source["last_result"]
    # robots.txt keeps /private/ out; the loop, the huge and the slow page fail and are reported.
    assert {k: result[k] for k in ("discovered", "created", "updated", "unchanged", "removed", "failed")} == {
        "discovered": 7,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "removed": 0,
        "failed": 3,
    }
    errors = {error["url"].rsplit("/", 1)[-1]: error for error in result["errors"]}
    assert set(errors) == {"loop", "huge", "slow"}
    assert errors["huge"]["code"] == "document_too_large"
    assert "redirects" in errors["loop"]["message"]
    assert "timed out" in errors["slow"]["message"]
    assert site.requests["/private/staff"] == 0
    assert source["page_count"] == 4
    assert source["next_sync_at"] is not None
    documents = page_documents(created["id"])
    assert set(documents) == {"hours", "shipping", "returns", "contact"}
    assert all(d.status == "ready" for d in documents.values())
    assert documents["hours"].title == "Opening hours"
    hits = alice.client.post(
        "/v1/knowledge/search", {"bot_id": bot.public_id, "query": "When are you open on Saturdays?"}, format="json"
    ).json()["data"]
    assert hits[0]["document_id"] == documents["hours"].public_id
    assert Event.objects.filter(type="source.synced", data__id=created["id"]).count() == 1

    # A second sync asks conditionally: every page answers 304, nothing is parsed or embedded again.
    chunks_before = set(Chunk.objects.filter(bot=bot).values_list("public_id", flat=True))
    sync(lambda: alice.client.post(f"/v1/knowledge/sources/{created['id']}/sync"))
    again = source_of(alice.client, created["id"])["last_result"]
    assert (again["created"], again["updated"], again["unchanged"], again["removed"]) == (0, 0, 4, 0)
    assert all(site.not_modified[path] == 1 for path in PAGES)
    assert set(Chunk.objects.filter(bot=bot).values_list("public_id", flat=True)) == chunks_before

    # One page changes, one disappears from the site and its sitemap.
    site.change("/shipping", html_page("Shipping", "Shipping is now free and takes two business days."))
    site.remove("/contact")
    site.sitemap("/sitemap-b.xml.gz", ["/returns", "/huge", "/slow"], gzipped=True)
    shipping = documents["shipping"]
    sync(lambda: alice.client.post(f"/v1/knowledge/sources/{created['id']}/sync"))
    third = source_of(alice.client, created["id"])["last_result"]
    assert (third["created"], third["updated"], third["unchanged"], third["removed"]) == (0, 1, 2, 1)
    documents = page_documents(created["id"])
    assert set(documents) == {"hours", "shipping", "returns"}
    assert documents["shipping"].public_id == shipping.public_id  # the same document, new content
    assert documents["shipping"].status == "ready"
    chunks_after = set(Chunk.objects.filter(bot=bot).values_list("public_id", flat=True))
    unchanged_pages = Chunk.objects.filter(document__in=[documents["hours"], documents["returns"]])
    assert set(unchanged_pages.values_list("public_id", flat=True)) <= chunks_before  # not re-embedded
    assert not (
        set(Chunk.objects.filter(document=documents["shipping"]).values_list("public_id", flat=True)) & chunks_before
    )
    assert chunks_after != chunks_before
    assert "free" in " ".join(Chunk.objects.filter(document=documents["shipping"]).values_list("text", flat=True))

    # Deleting the source deletes its documents.
    deleted = alice.client.delete(f"/v1/knowledge/sources/{created['id']}")
    assert deleted.json() == {"id": created["id"], "object": "website_source", "deleted": True, "documents_deleted": 3}
    assert not Document.objects.filter(bot=bot).exists()
    assert not Chunk.objects.filter(bot=bot).exists()


def test_a_crawl_follows_same_host_links_breadth_first_within_depth_and_patterns(alice, bot, site, sync):
    site.page("/", html_page("Home", "Welcome to Acme widgets.", ["/a", "/b", "/skip/me", "https://example.com/x"]))
    site.page("/a", html_page("A", "Widgets come in three sizes.", ["/c", "/"]))
    site.page("/b", html_page("B", "Our widgets are made in Ohio.", ["/private/staff"]))
    site.page("/skip/me", html_page("Skipped", "Excluded by pattern."))
    site.page("/c", html_page("C", "Large widgets weigh two kilograms.", ["/d"]))
    site.page("/d", html_page("D", "Too deep to be crawled."))
    created = sync(
        lambda: alice.client.post(
            "/v1/knowledge/sources",
            {
                "bot_id": bot.public_id,
                "type": "crawl",
                "url": site.url("/"),
                "max_depth": 2,
                "exclude": ["/skip/*"],
                "refresh": "never",
            },
            format="json",
        )
    )
    source = source_of(alice.client, created["id"])
    assert source["last_result"]["created"] == 4
    assert set(page_documents(created["id"])) == {"", "a", "b", "c"}
    assert site.requests["/d"] == 0  # three links away
    assert site.requests["/skip/me"] == 0
    assert site.requests["/private/staff"] == 0  # robots.txt
    assert source["next_sync_at"] is None  # refresh: never
    # max_pages stops the crawl.
    capped = sync(
        lambda: alice.client.post(
            "/v1/knowledge/sources",
            {
                "bot_id": BotFactory(tenant=alice.tenant).public_id,
                "type": "crawl",
                "url": site.url("/"),
                "max_pages": 2,
            },
            format="json",
        )
    )
    assert source_of(alice.client, capped["id"])["last_result"]["created"] == 2


def test_a_source_whose_sitemap_cannot_be_read_fails_with_source_failed(alice, bot, site, sync):
    created = sync(
        lambda: alice.client.post(
            "/v1/knowledge/sources",
            {"bot_id": bot.public_id, "type": "sitemap", "url": site.url("/nope.xml")},
            format="json",
        )
    )
    source = source_of(alice.client, created["id"])
    assert source["status"] == "failed"
    assert source["last_result"]["error"]["code"] == "fetch_failed"
    assert Event.objects.filter(type="source.failed", data__id=created["id"]).exists()


def test_plan_limits_stop_new_pages_and_are_reported(db, site, sync):
    actor = make_actor(plan_obj=PlanFactory(max_documents=1))
    bot = BotFactory(tenant=actor.tenant)
    created = sync(
        lambda: actor.client.post(
            "/v1/knowledge/sources",
            {"bot_id": bot.public_id, "type": "sitemap", "url": site.url("/sitemap-a.xml")},
            format="json",
        )
    )
    result = source_of(actor.client, created["id"])["last_result"]
    assert result["created"] == 1
    assert Document.objects.filter(tenant=actor.tenant).count() == 1
    assert "plan_limit_reached" in {error["code"] for error in result["errors"]}


def test_the_ssrf_guard_refuses_loopback_sources_in_production(alice, bot, settings):
    settings.ALLOW_PRIVATE_URLS = False
    response = alice.client.post(
        "/v1/knowledge/sources",
        {"bot_id": bot.public_id, "type": "sitemap", "url": "https://127.0.0.1/sitemap.xml"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_host_not_allowed"
    assert not WebsiteSource.objects.exists()


def test_beat_syncs_the_sources_that_are_due(alice, bot, site, sync, django_capture_on_commit_callbacks):
    created = sync(
        lambda: alice.client.post(
            "/v1/knowledge/sources",
            {"bot_id": bot.public_id, "type": "sitemap", "url": site.url("/sitemap-a.xml"), "refresh": "weekly"},
            format="json",
        )
    )
    assert sync_due_sources() == 0  # next week
    WebsiteSource.objects.filter(public_id=created["id"]).update(next_sync_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_sources() == 1
    assert site.not_modified["/hours"] == 1
    assert source_of(alice.client, created["id"])["last_synced_at"] > created["created_at"]


def test_another_tenants_sources_are_404s(alice, charlie, bot, site, sync):
    created = sync(
        lambda: alice.client.post(
            "/v1/knowledge/sources",
            {"bot_id": bot.public_id, "type": "sitemap", "url": site.url("/sitemap-a.xml")},
            format="json",
        )
    )
    for method, path in (("get", ""), ("post", "/sync"), ("delete", "")):
        response = getattr(charlie.client, method)(f"/v1/knowledge/sources/{created['id']}{path}")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "source_not_found"
    assert charlie.client.get("/v1/knowledge/sources").json()["data"] == []
    foreign_bot = charlie.client.get("/v1/knowledge/sources", {"bot_id": bot.public_id})
    assert foreign_bot.status_code == 404
    assert foreign_bot.json()["error"]["code"] == "bot_not_found"
    by_bot = alice.client.get("/v1/knowledge/sources", {"bot_id": bot.public_id}).json()["data"]
    assert [source["id"] for source in by_bot] == [created["id"]]
    other_bot = BotFactory(tenant=alice.tenant)
    assert alice.client.get("/v1/knowledge/sources", {"bot_id": other_bot.public_id}).json()["data"] == []
    refused = charlie.client.post(
        "/v1/knowledge/sources",
        {"bot_id": bot.public_id, "type": "sitemap", "url": site.url("/sitemap-a.xml")},
        format="json",
    )
    assert refused.status_code == 404
    assert Document.objects.filter(bot=bot).count() == 2
