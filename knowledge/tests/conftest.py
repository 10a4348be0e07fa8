"""Fixtures for the knowledge tests: a private MEDIA_ROOT, and uploads whose ingestion runs (eagerly) on commit."""

import pytest

from bothero.testing.factories import BotFactory
from knowledge import services


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def upload(alice, django_capture_on_commit_callbacks):
    """POST a file to /v1/knowledge/upload as Alice; the queued ingestion runs when the request commits."""

    def _upload(bot, name: str, data: bytes, client=None, **fields):
        from django.core.files.uploadedfile import SimpleUploadedFile

        with django_capture_on_commit_callbacks(execute=True):
            return (client or alice.client).post(
                "/v1/knowledge/upload",
                {"bot_id": bot.public_id, "file": SimpleUploadedFile(name, data), **fields},
                format="multipart",
            )

    return _upload


@pytest.fixture
def add_text(django_capture_on_commit_callbacks):
    """Create a text document through the service and run its ingestion."""

    def _add_text(bot, title: str, text: str, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            document = services.document_create_from_text(tenant=bot.tenant, bot=bot, title=title, text=text, **fields)
        document.refresh_from_db()
        return document

    return _add_text


@pytest.fixture
def charlie_bot(charlie):
    return BotFactory(tenant=charlie.tenant)


class _Site:
    """Responses served by `web_server`: path → list of (status, content type, body), consumed in order (the last repeats)."""

    def __init__(self):
        self.routes: dict[str, list[tuple[int, str, bytes]]] = {}
        self.requests: list[str] = []
        self.on_request = None

    def route(self, path: str, *responses: tuple[int, str, bytes]) -> None:
        self.routes[path] = list(responses)


@pytest.fixture
def web_server(settings):
    """A real HTTP server on loopback; URL ingestion may reach it (ALLOW_PRIVATE_URLS)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    settings.ALLOW_PRIVATE_URLS = True
    site = _Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            site.requests.append(self.path)
            if site.on_request is not None:
                site.on_request(self.path)
            responses = site.routes.get(self.path) or [(404, "text/plain", b"not found")]
            status, content_type, body = responses.pop(0) if len(responses) > 1 else responses[0]
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield site
    server.shutdown()
    server.server_close()
