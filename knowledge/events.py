"""Event payloads of the knowledge base: what `document.ready` and `document.failed` carry as `data`."""

from knowledge.models import Document
from knowledge.serializers import DocumentSerializer


def document_event_data(document: Document) -> dict:
    """The document object, as the API shows it (`docs/knowledge.md`, "The document object")."""
    return DocumentSerializer(document).data
