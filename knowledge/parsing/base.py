"""The parsed document's shape, its error, text cleaning and the limit on extracted text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

PDF_MIME = "application/pdf"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML_MIME = "text/html"
MARKDOWN_MIME = "text/markdown"
TEXT_MIME = "text/plain"
CSV_MIME = "text/csv"

#: Cap on the extracted text of one document, whatever its format.
MAX_TEXT_CHARS = 10_000_000

EMPTY_DOCUMENT = "empty_document"
INVALID_DOCUMENT = "invalid_document"
DOCUMENT_TOO_LARGE = "document_too_large"
UNSUPPORTED_FILE_TYPE = "unsupported_file_type"


class ParseError(Exception):
    """A document could not be parsed; ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ParseError({self.code!r}, {self.message!r})"


@dataclass
class Section:
    """A run of text that shares one heading and one page (either may be unknown)."""

    text: str
    heading: str | None = None
    page: int | None = None


@dataclass
class ParsedDocument:
    """The result of :func:`parse_document`: the detected type and the text sections."""

    content_type: str
    sections: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The whole document as one string, sections separated by blank lines."""
        return "\n\n".join(section.text for section in self.sections)


# --------------------------------------------------------------------------
# Text cleaning
# --------------------------------------------------------------------------

# C0/C1 control characters (tab, newline and carriage return excepted) and
# invisible format characters that only get in the way of search: soft hyphen,
# zero-width space, word joiner, byte-order mark. ZWJ/ZWNJ are kept because
# emoji sequences and several scripts need them.
_STRIPPED_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff]")
_LINE_BREAKS = re.compile("\r\n?|[\x0b\x0c\u2028\u2029]")
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise text for indexing.

    Unifies line breaks, strips control and invisible characters, applies
    Unicode NFC, collapses horizontal whitespace to single spaces, trims every
    line and keeps at most one blank line between paragraphs.
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = _STRIPPED_CHARS.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


# --------------------------------------------------------------------------
# Type detection


def finish_sections(raw_sections: list[Section]) -> list[Section]:
    """Clean every section, drop the empty ones and enforce the text limit."""
    sections: list[Section] = []
    total = 0
    for raw in raw_sections:
        text = clean_text(raw.text)
        if not text:
            continue
        total += len(text)
        if total > MAX_TEXT_CHARS:
            raise ParseError(
                DOCUMENT_TOO_LARGE,
                f"The document has more than {MAX_TEXT_CHARS:,} characters of text.",
            )
        heading = clean_text(raw.heading).replace("\n", " ") if raw.heading else None
        sections.append(Section(text=text, heading=heading or None, page=raw.page))
    return sections


def check_text_budget(chars: int) -> None:
    # Checked while extracting, so a huge document stops early instead of
    # being extracted in full and refused afterwards.
    if chars > MAX_TEXT_CHARS:
        raise ParseError(
            DOCUMENT_TOO_LARGE,
            f"The document has more than {MAX_TEXT_CHARS:,} characters of text.",
        )
