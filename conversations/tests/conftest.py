"""Fixtures for the chat engine: a bot trained on an FAQ, an OpenAI-compatible stub on loopback, SSE parsing."""

from __future__ import annotations

import json

import pytest

from bothero.testing.factories import BotFactory
from conversations.testing.llm_server import LLMStub
from knowledge import services as knowledge_services

FAQ_TITLE = "Acme Widgets FAQ"
FAQ_TEXT = """# Opening hours

We're open Monday through Friday, 9 AM to 6 PM EST. On Saturdays the shop opens from 10 AM to 2 PM.
We are closed on Sundays and on public holidays.

# Refunds

You can return any widget within 30 days of delivery for a full refund. Refunds are paid back to the
original payment method within 5 business days. Custom engraved widgets cannot be refunded.

# Shipping

Standard shipping takes 3 to 5 business days and costs $4.99. Orders over $50 ship for free.
Express shipping arrives the next business day and costs $14.99.

# Contact

Email support@acme-widgets.example or call +1 (555) 010-7788 during opening hours.
"""


def train(bot, title: str = FAQ_TITLE, text: str = FAQ_TEXT, *, capture=None):
    """Give `bot` a text document through the knowledge service and run its ingestion now."""
    if capture is None:
        document = knowledge_services.document_create_from_text(tenant=bot.tenant, bot=bot, title=title, text=text)
    else:
        with capture(execute=True):
            document = knowledge_services.document_create_from_text(tenant=bot.tenant, bot=bot, title=title, text=text)
    document.refresh_from_db()
    assert document.status == "ready", (document.status, document.error_message)
    return document


@pytest.fixture
def faq_bot(alice, django_capture_on_commit_callbacks):
    bot = BotFactory(tenant=alice.tenant, name="Acme support", instructions="You are Acme Widgets' support assistant.")
    train(bot, capture=django_capture_on_commit_callbacks)
    return bot


@pytest.fixture
def charlie_bot(charlie):
    return BotFactory(tenant=charlie.tenant)


@pytest.fixture
def llm_stub():
    with LLMStub() as stub:
        yield stub


@pytest.fixture
def openai_provider(settings, llm_stub):
    """Chat through the `openai` provider against the loopback stub (no retries unless a test asks)."""
    settings.LLM_PROVIDER = "openai"
    settings.LLM_BASE_URL = llm_stub.base_url
    settings.LLM_API_KEY = "sk-test"
    settings.LLM_MODEL = ""
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_TIMEOUT_SECONDS = 5.0
    return llm_stub


def parse_sse(raw: str | bytes) -> list[tuple[str, object]]:
    """SSE frames as (event, data) pairs; `data` is parsed JSON (or the raw string); comments as ("comment", text)."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    events = []
    for frame in raw.split("\n\n"):
        if not frame.strip():
            continue
        event, data_lines = "message", []
        for line in frame.split("\n"):
            if line.startswith(":"):
                events.append(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data_lines.append(line[len("data:") :].strip())
        if data_lines:
            data = "\n".join(data_lines)
            try:
                events.append((event, json.loads(data)))
            except ValueError:
                events.append((event, data))
    return events


def streamed_body(response) -> bytes:
    return b"".join(response.streaming_content)
