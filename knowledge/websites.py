"""Reading websites for website sources: robots.txt, sitemaps (indexes and gzip included), same-host links,
and conditional page fetches. Every request goes through the SSRF guard (`bothero.netguard`).

Pure functions of URLs and bytes plus `netguard.fetch_url`; the sync service
(`knowledge.services.sources`) decides what to do with what they find.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from bs4 import BeautifulSoup
from defusedxml import ElementTree
from django.conf import settings

from bothero import netguard

USER_AGENT = "BotHeroBot"
MAX_SITEMAP_FILES = 50  # an index and the sitemaps it lists, followed at most this many
GZIP_MAGIC = b"\x1f\x8b"


class DiscoveryError(Exception):
    """The source's own URL (sitemap or start page) could not be read: nothing can be synced."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Page:
    """A page fetch: `status` 200 with `content`, or 304 (unchanged) without."""

    url: str
    status: int
    content: bytes = b""
    etag: str = ""
    last_modified: str = ""
    content_type: str = ""


def _fetch(url: str, *, max_bytes: int, headers: dict | None = None) -> netguard.FetchedURL:
    return netguard.fetch_url(
        url,
        allow_private=settings.ALLOW_PRIVATE_URLS,
        max_bytes=max_bytes,
        timeout=settings.KNOWLEDGE_SOURCE_PAGE_TIMEOUT_SECONDS,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
    )


def fetch_page(url: str, *, etag: str = "", last_modified: str = "") -> Page:
    """GET a page, conditionally when an ETag or Last-Modified is known. Raises netguard errors."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    fetched = _fetch(url, max_bytes=settings.KNOWLEDGE_SOURCE_MAX_PAGE_BYTES, headers=headers)
    return Page(
        url=url,
        status=fetched.status_code,
        content=fetched.content if fetched.status_code != 304 else b"",
        etag=fetched.headers.get("etag", etag),
        last_modified=fetched.headers.get("last-modified", last_modified),
        content_type=(fetched.content_type or "").split(";")[0].strip().lower(),
    )


def robots_for(url: str) -> RobotFileParser:
    """The site's robots.txt rules (everything allowed when it has none or it cannot be read)."""
    parts = urlsplit(url)
    robots = RobotFileParser()
    try:
        fetched = _fetch(f"{parts.scheme}://{parts.netloc}/robots.txt", max_bytes=512 * 1024)
        robots.parse(fetched.content.decode("utf-8", "replace").splitlines())
    except netguard.NetguardError:
        robots.parse([])
    return robots


def _inflate(data: bytes) -> bytes:
    """A gzipped sitemap, inflated at most to the page size limit (a decompression bomb stops there)."""
    limit = settings.KNOWLEDGE_SOURCE_MAX_PAGE_BYTES
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DiscoveryError("invalid_sitemap", f"The gzipped sitemap is corrupt: {exc}") from exc
    if len(out) > limit:
        raise DiscoveryError("sitemap_too_large", f"The sitemap inflates to more than {limit:,} bytes.")
    return out


def _sitemap_locations(data: bytes) -> tuple[str, list[str]]:
    """('urlset' | 'sitemapindex', the <loc> URLs) of one sitemap file."""
    if data[:2] == GZIP_MAGIC:
        data = _inflate(data)
    try:
        root = ElementTree.parse(io.BytesIO(data)).getroot()
    except Exception as exc:  # defusedxml's refusals and plain parse errors alike
        raise DiscoveryError("invalid_sitemap", f"The sitemap is not valid XML: {exc}") from exc
    kind = root.tag.rsplit("}", 1)[-1]
    locations = [
        element.text.strip() for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "loc" and element.text
    ]
    return kind, locations


def sitemap_urls(url: str, *, limit: int) -> list[str]:
    """Page URLs listed by the sitemap at `url` (following a sitemap index), in order, at most `limit`."""
    pending, seen_files, pages = [url], set(), []
    while pending and len(pages) < limit and len(seen_files) < MAX_SITEMAP_FILES:
        sitemap = pending.pop(0)
        if sitemap in seen_files:
            continue
        seen_files.add(sitemap)
        try:
            fetched = _fetch(sitemap, max_bytes=settings.KNOWLEDGE_SOURCE_MAX_PAGE_BYTES)
        except netguard.NetguardError as exc:
            if sitemap == url:
                raise DiscoveryError(exc.code, f"The sitemap could not be read: {exc.message}") from exc
            continue  # one broken child sitemap does not stop the others
        kind, locations = _sitemap_locations(fetched.content)
        if kind == "sitemapindex":
            pending.extend(locations)
        else:
            pages.extend(location for location in locations if location not in pages)
    return pages[:limit]


def page_links(base_url: str, content: bytes) -> list[str]:
    """The http(s) links of an HTML page on the same host as `base_url`, absolute, without fragments."""
    host = urlsplit(base_url).netloc.lower()
    soup = BeautifulSoup(content, "html.parser")
    links = []
    for anchor in soup.find_all("a", href=True):
        target, _ = urldefrag(urljoin(base_url, anchor["href"].strip()))
        parts = urlsplit(target)
        if parts.scheme in ("http", "https") and parts.netloc.lower() == host and target not in links:
            links.append(target)
    return links


def page_title(content: bytes, url: str) -> str:
    soup = BeautifulSoup(content, "html.parser")
    if soup.title and soup.title.get_text(strip=True):
        return soup.title.get_text(" ", strip=True)[:255]
    return url[:255]


def url_allowed(url: str, *, include: list[str], exclude: list[str]) -> bool:
    """Whether the URL's path (with its query) passes the source's include/exclude glob patterns."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if include and not any(fnmatchcase(path, pattern) for pattern in include):
        return False
    return not any(fnmatchcase(path, pattern) for pattern in exclude)
