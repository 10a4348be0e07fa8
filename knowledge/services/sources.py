"""Website sources: create, delete, and sync — discover the pages, fetch them conditionally, ingest only the new
and changed ones (one document per page), remove the documents of pages that are gone.

A sync (`website_source_sync`, run by the `knowledge.sync_source` task) claims
the source with a conditional UPDATE, so two runs never sync one source at
once. For each page it keeps the ETag, Last-Modified and a SHA-256 of the
bytes: a 304, or the same bytes, costs no parsing and no embedding; a changed
page's document gets the new bytes and is re-ingested (its chunks only); a
new page becomes a document (plan limits apply); a page no longer listed (or
answering 404/410) takes its document with it. Pages that fail (too large,
too slow, a redirect loop, a server error) are reported and kept as they were.
Progress is written on the source as it goes; the result at the end, with
`source.synced` (or `source.failed` when nothing could be discovered).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from bothero import netguard
from bothero.errors import ConflictError, PlanLimitError, ValidationError
from bothero.ids import random_base62
from knowledge import queueing, websites
from knowledge.events import source_event_data
from knowledge.models import Document, SourcePage, WebsiteSource
from knowledge.services.documents import document_content_replace, document_create_from_file, document_delete
from webhooks.services import event_emit

logger = logging.getLogger(__name__)

REFRESH_INTERVALS = {
    WebsiteSource.Refresh.DAILY: timedelta(days=1),
    WebsiteSource.Refresh.WEEKLY: timedelta(days=7),
}
MAX_REPORTED_ERRORS = 20
PROGRESS_EVERY_SECONDS = 1.0
GONE_STATUSES = (404, 410)


def website_source_create(
    *,
    tenant,
    bot,
    type: str,
    url: str,
    max_pages: int,
    max_depth: int,
    include: list[str],
    exclude: list[str],
    refresh: str,
) -> WebsiteSource:
    """Create a source (its URL must pass the SSRF guard) and queue its first sync after commit."""
    try:
        # A host that does not resolve yet may be saved: every fetch of the sync checks again.
        netguard.check_url(url, allow_private=_allow_private(), must_resolve=False)
    except netguard.UnsafeURLError as exc:
        raise ValidationError(exc.message, code=exc.code, param="url") from exc
    with transaction.atomic():
        source = WebsiteSource.objects.create(
            tenant=tenant,
            bot=bot,
            type=type,
            url=url,
            max_pages=max_pages,
            max_depth=max_depth,
            include=include,
            exclude=exclude,
            refresh=refresh,
            status=WebsiteSource.Status.QUEUED,
        )
        queueing.source_sync_on_commit(source.pk)
    return source


def _allow_private() -> bool:
    return settings.ALLOW_PRIVATE_URLS


def website_source_sync_request(*, source: WebsiteSource) -> WebsiteSource:
    """Queue a sync now (409 `source_sync_in_progress` while one runs)."""
    with transaction.atomic():
        updated = WebsiteSource.objects.filter(pk=source.pk).exclude(status=WebsiteSource.Status.SYNCING)
        if not updated.update(status=WebsiteSource.Status.QUEUED, updated_at=timezone.now()):
            raise ConflictError("This source is syncing now; wait for it to finish.", code="source_sync_in_progress")
        queueing.source_sync_on_commit(source.pk)
    source.refresh_from_db()
    return source


def website_source_sync_queue(*, source_id: int) -> None:
    """Mark a source due a scheduled refresh as queued and queue its sync (beat)."""
    with transaction.atomic():
        queued = WebsiteSource.objects.filter(
            pk=source_id, status__in=[WebsiteSource.Status.IDLE, WebsiteSource.Status.FAILED]
        ).update(status=WebsiteSource.Status.QUEUED, updated_at=timezone.now())
        if queued:
            queueing.source_sync_on_commit(source_id)


def website_source_delete(*, source: WebsiteSource) -> None:
    """Delete the source with every document it made."""
    for page in source.pages.select_related("document__tenant", "document__bot").exclude(document=None):
        document_delete(document=page.document)
    source.delete()


def website_sources_due(*, now=None) -> list[int]:
    """Ids of the sources whose scheduled refresh is due (and that are not queued or syncing already)."""
    now = now or timezone.now()
    return list(
        WebsiteSource.objects.filter(
            next_sync_at__lte=now, status__in=[WebsiteSource.Status.IDLE, WebsiteSource.Status.FAILED]
        )
        .exclude(refresh=WebsiteSource.Refresh.NEVER)
        .values_list("pk", flat=True)
    )


# --- the sync ------------------------------------------------------------------------------------


class _Sync:
    """One run over one source: counts, reported errors and throttled progress."""

    def __init__(self, source: WebsiteSource):
        self.source = source
        self.counts = dict.fromkeys(
            ("discovered", "created", "updated", "unchanged", "removed", "failed", "skipped"), 0
        )
        self.errors: list[dict] = []
        self.documents_queued: list[str] = []
        self._progress_at = 0.0

    def fail_page(self, url: str, code: str, message: str) -> None:
        self.counts["failed"] += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"url": url, "code": code, "message": message})

    def progress(self, phase: str, processed: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._progress_at < PROGRESS_EVERY_SECONDS:
            return
        self._progress_at = now
        WebsiteSource.objects.filter(pk=self.source.pk, claim_token=self.source.claim_token).update(
            progress={"phase": phase, "discovered": self.counts["discovered"], "processed": processed},
            updated_at=timezone.now(),
        )

    def result(self) -> dict:
        return {**self.counts, "errors": self.errors}


def _claim(source_id: int) -> WebsiteSource | None:
    token = random_base62(24)
    # A run that died (worker killed) leaves `syncing` behind; after the task's time limit it is free again.
    abandoned = timezone.now() - timedelta(seconds=settings.KNOWLEDGE_SOURCE_SYNC_TIME_LIMIT_SECONDS)
    claimed = WebsiteSource.objects.filter(pk=source_id).filter(
        ~Q(status=WebsiteSource.Status.SYNCING) | Q(claimed_at__lt=abandoned)
    )
    if not claimed.update(status=WebsiteSource.Status.SYNCING, claim_token=token, claimed_at=timezone.now()):
        return None
    return WebsiteSource.objects.select_related("tenant__plan", "bot").get(pk=source_id)


def website_source_sync(*, source_id: int) -> dict | None:
    """Sync the source with this primary key (see the module docstring); None when another run has it."""
    source = _claim(source_id)
    if source is None:
        return None
    run = _Sync(source)
    try:
        robots = websites.robots_for(source.url)
        known = {page.url: page for page in source.pages.select_related("document__tenant", "document__bot")}
        seen: set[str] = set()
        if source.type == WebsiteSource.Type.SITEMAP:
            run.progress("discovering", 0, force=True)
            urls = [
                url
                for url in websites.sitemap_urls(source.url, limit=source.max_pages * 2)
                if _wanted(source, robots, url)
            ]
            urls = urls[: source.max_pages]
            run.counts["discovered"] = len(urls)
            for number, url in enumerate(urls, 1):
                _sync_page(run, url, known.get(url), seen)
                run.progress("fetching", number)
        else:
            _crawl(run, robots, known, seen)
    except websites.DiscoveryError as exc:
        return _finish(run, failed=(exc.code, exc.message))
    except Exception:
        logger.exception("Website source %s failed", source.public_id)
        _finish(run, failed=("sync_failed", "The sync failed unexpectedly; it has been logged."))
        raise
    # Pages the site no longer lists (or that are now excluded) take their documents with them.
    for url, page in known.items():
        if url not in seen:
            _remove_page(run, page)
    return _finish(run)


def _wanted(source: WebsiteSource, robots, url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    return websites.url_allowed(url, include=source.include, exclude=source.exclude) and robots.can_fetch(
        websites.USER_AGENT, url
    )


def _crawl(run: _Sync, robots, known: dict, seen: set[str]) -> None:
    """Breadth first from the start URL over same-host links, to `max_depth` links away, at most `max_pages` pages."""
    source = run.source
    queue = deque([(source.url, 0)])
    queued = {source.url}
    processed = 0
    while queue and processed < source.max_pages:
        url, depth = queue.popleft()
        if url != source.url and not _wanted(source, robots, url):
            continue
        run.counts["discovered"] += 1
        links = _sync_page(run, url, known.get(url), seen)
        processed += 1
        run.progress("crawling", processed)
        if depth < source.max_depth:
            for link in links:
                if link not in queued:
                    queued.add(link)
                    queue.append((link, depth + 1))
    if processed == 0:
        raise websites.DiscoveryError("nothing_to_crawl", "The start page is excluded or disallowed by robots.txt.")


def _sync_page(run: _Sync, url: str, page: SourcePage | None, seen: set[str]) -> list[str]:
    """Fetch one page and bring its document up to date; returns the page's same-host links (crawls)."""
    source = run.source
    try:
        fetched = websites.fetch_page(
            url, etag=page.etag if page else "", last_modified=page.last_modified if page else ""
        )
    except netguard.FetchError as exc:
        if exc.status_code in GONE_STATUSES:
            return []  # not seen: removed at the end
        seen.add(url)
        run.fail_page(url, exc.code, exc.message)
        if url == source.url and page is None and source.type == WebsiteSource.Type.CRAWL:
            raise websites.DiscoveryError(exc.code, f"The start page could not be read: {exc.message}") from exc
        return page.links if page else []
    except netguard.UnsafeURLError as exc:
        run.fail_page(url, exc.code, exc.message)
        return []
    seen.add(url)
    now = timezone.now()
    if fetched.status == 304 and page is not None:
        run.counts["unchanged"] += 1
        SourcePage.objects.filter(pk=page.pk).update(last_seen_at=now)
        return page.links
    links = websites.page_links(fetched.url, fetched.content) if source.type == WebsiteSource.Type.CRAWL else []
    sha256 = hashlib.sha256(fetched.content).hexdigest()
    if page is not None and page.content_sha256 == sha256 and page.document_id:
        run.counts["unchanged"] += 1
        SourcePage.objects.filter(pk=page.pk).update(
            etag=fetched.etag, last_modified=fetched.last_modified, links=links, last_seen_at=now
        )
        return links
    if fetched.content_type and fetched.content_type not in ("text/html", "application/xhtml+xml", "text/plain"):
        run.counts["skipped"] += 1
        return links
    title = websites.page_title(fetched.content, url)
    try:
        if page is not None and page.document_id:
            document_content_replace(document=page.document, data=fetched.content, title=title)
            run.counts["updated"] += 1
            document = page.document
        else:
            document = document_create_from_file(
                tenant=source.tenant,
                bot=source.bot,
                data=fetched.content,
                filename="page.html",
                title=title,
                metadata={"source_id": source.public_id, "url": url},
            )
            if getattr(document, "duplicate", False):
                # The bot already has these exact bytes (another URL of the same page): nothing new to learn.
                run.counts["skipped"] += 1
                document = None
            else:
                run.counts["created"] += 1
    except PlanLimitError as exc:
        run.fail_page(url, exc.code, exc.message)
        return links
    except (IntegrityError, ValidationError) as exc:
        run.fail_page(url, getattr(exc, "code", "invalid_page"), str(exc))
        return links
    except Exception as exc:  # an unsupported or empty page: reported, the sync goes on
        run.fail_page(url, getattr(exc, "code", "invalid_page"), getattr(exc, "message", str(exc)))
        return links
    if document is not None:
        run.documents_queued.append(document.public_id)
    SourcePage.objects.update_or_create(
        source=source,
        url=url,
        defaults={
            "document": document,
            "etag": fetched.etag,
            "last_modified": fetched.last_modified,
            "content_sha256": sha256 if document is not None else "",
            "links": links,
            "last_seen_at": now,
        },
    )
    return links


def _remove_page(run: _Sync, page: SourcePage) -> None:
    if page.document_id:
        try:
            document_delete(document=page.document)
        except Document.DoesNotExist:
            pass
    page.delete()
    run.counts["removed"] += 1


def _finish(run: _Sync, *, failed: tuple[str, str] | None = None) -> dict:
    source = run.source
    result = run.result()
    if failed is not None:
        result["error"] = {"code": failed[0], "message": failed[1]}
    now = timezone.now()
    interval = REFRESH_INTERVALS.get(source.refresh)
    with transaction.atomic():
        WebsiteSource.objects.filter(pk=source.pk, claim_token=source.claim_token).update(
            status=WebsiteSource.Status.FAILED if failed else WebsiteSource.Status.IDLE,
            progress={"phase": "done", "discovered": result["discovered"], "processed": result["discovered"]},
            last_result=result,
            last_synced_at=now,
            next_sync_at=now + interval if interval else None,
            claim_token="",
            claimed_at=None,
            updated_at=now,
        )
        source.refresh_from_db()
        event_emit(
            tenant=source.tenant,
            type="source.failed" if failed else "source.synced",
            data=source_event_data(source),
        )
    return result
