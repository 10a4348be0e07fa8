"""A website on loopback for website-source tests and `bench/source_sync.py`: pages, sitemaps (plain, gzipped,
indexes), robots.txt, redirects, slow and huge pages, with ETag / Last-Modified and 304 answers.

    with LocalSite() as site:
        site.page("/a", "<html><title>A</title><p>Text</p></html>")
        site.sitemap("/sitemap.xml", ["/a"])
        ... site.url("/sitemap.xml") ...
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    conditional: bool = True  # answer If-None-Match / If-Modified-Since with 304
    last_modified: str = field(default_factory=lambda: formatdate(usegmt=True))

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


def html_page(title: str, text: str, links: list[str] = ()) -> str:
    anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>{anchors}</body></html>"


class LocalSite:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: Counter = Counter()
        self.not_modified: Counter = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self) -> LocalSite:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- content -------------------------------------------------------------------

    def page(self, path: str, html: str, **options) -> Route:
        route = Route(body=html.encode(), **options)
        self.routes[path] = route
        return route

    def change(self, path: str, html: str) -> None:
        route = self.routes[path]
        route.body = html.encode()
        route.last_modified = formatdate(time.time() + 1, usegmt=True)

    def remove(self, path: str) -> None:
        self.routes.pop(path, None)

    def sitemap(self, path: str, paths: list[str], *, gzipped: bool = False) -> None:
        entries = "".join(f"<url><loc>{self.url(p)}</loc></url>" for p in paths)
        xml = f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
        self._xml(path, xml, gzipped)

    def sitemap_index(self, path: str, sitemaps: list[str], *, gzipped: bool = False) -> None:
        entries = "".join(f"<sitemap><loc>{self.url(p)}</loc></sitemap>" for p in sitemaps)
        xml = f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>'
        self._xml(path, xml, gzipped)

    def _xml(self, path: str, xml: str, gzipped: bool) -> None:
        body = gzip.compress(xml.encode()) if gzipped else xml.encode()
        content_type = "application/gzip" if gzipped else "application/xml"
        self.routes[path] = Route(body=body, content_type=content_type, conditional=False)

    def robots(self, text: str) -> None:
        self.routes["/robots.txt"] = Route(body=text.encode(), content_type="text/plain", conditional=False)

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.routes[path] = Route(status=status, headers={"Location": to}, conditional=False)

    # --- serving -----------------------------------------------------------------------

    def _handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                path = self.path
                with site._lock:
                    site.requests[path] += 1
                route = site.routes.get(path)
                if route is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.status == 200 and route.conditional:
                    if self.headers.get("If-None-Match") == route.etag or (
                        not self.headers.get("If-None-Match")
                        and self.headers.get("If-Modified-Since") == route.last_modified
                    ):
                        with site._lock:
                            site.not_modified[path] += 1
                        self._send(304, b"", None, {"ETag": route.etag})
                        return
                headers = dict(route.headers)
                if route.conditional and route.status == 200:
                    headers.update({"ETag": route.etag, "Last-Modified": route.last_modified})
                self._send(route.status, route.body, route.content_type, headers)

            def _send(self, status, body, content_type, headers):
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

        return Handler
