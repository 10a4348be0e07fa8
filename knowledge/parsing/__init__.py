"""Turn uploaded documents into clean text sections: one module per format.

The type of a document is decided by its content (magic bytes and sniffing,
``detect``), never by its file name: names are chosen by the uploader and
prove nothing. Every parser works under explicit limits (pages, zip entries,
decompressed size, extracted characters) so that a hostile file fails fast
with a :class:`ParseError` instead of exhausting the worker.
"""

from __future__ import annotations

from knowledge.parsing.base import (
    CSV_MIME,
    DOCUMENT_TOO_LARGE,
    DOCX_MIME,
    EMPTY_DOCUMENT,
    HTML_MIME,
    INVALID_DOCUMENT,
    MARKDOWN_MIME,
    MAX_TEXT_CHARS,
    PDF_MIME,
    TEXT_MIME,
    UNSUPPORTED_FILE_TYPE,
    ParsedDocument,
    ParseError,
    Section,
    clean_text,
    finish_sections,
)
from knowledge.parsing.detect import detect_content_type
from knowledge.parsing.docx import MAX_ZIP_ENTRIES, MAX_ZIP_UNCOMPRESSED_BYTES, parse_docx
from knowledge.parsing.html import parse_html
from knowledge.parsing.markdown import parse_markdown
from knowledge.parsing.pdf import MAX_PDF_PAGES, parse_pdf
from knowledge.parsing.text import parse_csv, parse_text

__all__ = [
    "CSV_MIME",
    "DOCUMENT_TOO_LARGE",
    "DOCX_MIME",
    "EMPTY_DOCUMENT",
    "HTML_MIME",
    "INVALID_DOCUMENT",
    "MARKDOWN_MIME",
    "MAX_PDF_PAGES",
    "MAX_TEXT_CHARS",
    "MAX_ZIP_ENTRIES",
    "MAX_ZIP_UNCOMPRESSED_BYTES",
    "PDF_MIME",
    "TEXT_MIME",
    "UNSUPPORTED_FILE_TYPE",
    "ParseError",
    "ParsedDocument",
    "Section",
    "clean_text",
    "detect_content_type",
    "parse_document",
]


def parse_document(data: bytes, *, filename: str | None = None) -> ParsedDocument:
    """Detect the type of ``data`` from its content and extract its text sections.

    ``filename`` is only used to make error messages clearer; it never
    influences the detected type. Raises :class:`ParseError` with one of the
    codes ``unsupported_file_type``, ``empty_document``, ``invalid_document``
    or ``document_too_large``.
    """
    label = f"“{filename}”" if filename else "The file"
    if not data or not data.strip():
        raise ParseError(EMPTY_DOCUMENT, f"{label} is empty.")
    content_type = detect_content_type(data)
    if content_type is None:
        raise ParseError(
            UNSUPPORTED_FILE_TYPE,
            f"{label} is not a supported document (PDF, DOCX, HTML, Markdown, CSV or UTF-8 plain text).",
        )
    parser = _PARSERS[content_type]
    raw_sections = parser(data)
    sections = finish_sections(raw_sections)
    if not sections:
        raise ParseError(EMPTY_DOCUMENT, f"{label} contains no extractable text.")
    return ParsedDocument(content_type=content_type, sections=sections)


_PARSERS = {
    PDF_MIME: parse_pdf,
    DOCX_MIME: parse_docx,
    HTML_MIME: parse_html,
    MARKDOWN_MIME: parse_markdown,
    TEXT_MIME: parse_text,
    CSV_MIME: parse_csv,
}
