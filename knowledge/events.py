"""Event payloads of the knowledge base: what `document.ready`, `document.failed`, `source.synced` and
`source.failed` carry as `data`."""

from knowledge.models import Document, WebsiteSource
from knowledge.serializers import DocumentSerializer, WebsiteSourceSerializer


def document_event_data(document: Document) -> dict:
    """The document object, as the API shows it (`docs/knowledge.md`, "The document object")."""
    return DocumentSerializer(document).data


def source_event_data(source: WebsiteSource) -> dict:
    """The website source object, with its `last_result`, as the API shows it."""
    return WebsiteSourceSerializer(source).data
