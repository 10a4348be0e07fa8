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
