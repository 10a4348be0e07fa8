"""PDF: text per page (pypdf), with the outline's headings and page numbers."""

from __future__ import annotations

import io
import logging

from knowledge.parsing.base import DOCUMENT_TOO_LARGE, INVALID_DOCUMENT, ParseError, Section, check_text_budget
from knowledge.sentences import unwrap_text

logger = logging.getLogger(__name__)

#: PDFs with more pages than this are refused rather than parsed.
MAX_PDF_PAGES = 2000


def parse_pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty user password only to
            # carry permission flags; those open fine.
            if not reader.decrypt(""):
                raise ParseError(INVALID_DOCUMENT, "The PDF is password-protected.")
        page_count = len(reader.pages)
        if page_count > MAX_PDF_PAGES:
            raise ParseError(
                DOCUMENT_TOO_LARGE,
                f"The PDF has {page_count:,} pages; the limit is {MAX_PDF_PAGES:,}.",
            )
        headings = _pdf_page_headings(reader, page_count)
        sections = []
        chars = 0
        for index, page in enumerate(reader.pages):
            text = page.extract_text() or ""
            chars += len(text)
            check_text_budget(chars)
            # A page's lines end where the page ran out of width: join them back into paragraphs.
            sections.append(Section(text=unwrap_text(text), heading=headings[index], page=index + 1))
    except ParseError:
        raise
    except LimitReachedError as exc:
        raise ParseError(DOCUMENT_TOO_LARGE, "The PDF expands beyond the allowed size.") from exc
    except Exception as exc:
        # pypdf signals corrupt input with many exception types (PdfReadError,
        # KeyError, ValueError, struct errors...); all mean the same to us.
        logger.info("PDF parsing failed: %r", exc)
        raise ParseError(INVALID_DOCUMENT, "The PDF is damaged or truncated and cannot be read.") from exc
    return sections


def _pdf_page_headings(reader, page_count: int) -> list[str | None]:
    """Map each page to the bookmark (outline entry) it falls under.

    A page takes the first bookmark that points at it, otherwise the last
    bookmark of an earlier page. PDFs without bookmarks get no headings.
    """
    try:
        entries = []
        for order, item in enumerate(_flatten_outline(reader.outline)):
            page = reader.get_destination_page_number(item)
            # Bookmarks pointing nowhere come back as None or -1.
            if isinstance(page, int) and page >= 0:
                entries.append((page, order, str(item.title)))
        entries.sort()
    except Exception:
        # Bookmarks are optional context; a broken outline must not make an
        # otherwise readable PDF fail.
        logger.info("Ignoring an unreadable PDF outline", exc_info=True)
        return [None] * page_count
    headings: list[str | None] = []
    current: str | None = None
    pending = iter(entries)
    entry = next(pending, None)
    for page in range(page_count):
        first_on_page = None
        while entry is not None and entry[0] <= page:
            if entry[0] == page and first_on_page is None:
                first_on_page = entry[2]
            current = entry[2]
            entry = next(pending, None)
        headings.append(first_on_page or current)
    return headings


def _flatten_outline(outline) -> list:
    """Depth-first list of outline entries (nested lists hold sub-entries)."""
    flat = []
    stack = [iter(outline)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


# --------------------------------------------------------------------------
# DOCX
# --------------------------------------------------------------------------
