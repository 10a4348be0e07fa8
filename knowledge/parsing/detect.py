"""The type of a document, judged by its content (magic bytes and sniffing), never by its name."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from knowledge.parsing.base import CSV_MIME, DOCX_MIME, HTML_MIME, MARKDOWN_MIME, PDF_MIME, TEXT_MIME

#: Text with more control characters than this (relative to its length) is
#: treated as binary data with a misleading name.
MAX_CONTROL_CHAR_RATIO = 0.05
#: How much of a text file the markdown/CSV sniffers look at.
SNIFF_BYTES = 64 * 1024
#: How much of that sample csv.Sniffer itself is given (it is quadratic at worst).
SNIFF_DIALECT_CHARS = 4 * 1024
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")

# --------------------------------------------------------------------------

# A document that opens with one of these is HTML whatever else it contains.
_HTML_DOCUMENT = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
    rb"<(?:!doctype\s+html|html|head|body)[\s>]",
    re.IGNORECASE | re.DOTALL,
)
# An HTML fragment; checked after markdown because READMEs often open with
# a centred ``<p>`` or ``<div>`` and then carry on in markdown.
_HTML_FRAGMENT = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*"
    rb"<(?:meta|title|div|p|h[1-6]|article|section|main|table|ul|ol|header|nav)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_MD_FENCE = re.compile(r"^ {0,3}(?:```|~~~)", re.MULTILINE)
_MD_LINK = re.compile(r"!?\[[^\]\n]+\]\([^)\s]+(?:\s+\"[^\"\n]*\")?\)")
MD_LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S", re.MULTILINE)


def detect_content_type(data: bytes) -> str | None:
    """Return the MIME type of ``data`` judged by its content, or ``None``.

    ``None`` means the bytes are not a supported document: an unknown binary
    format, a zip that is not a DOCX, or text that is not valid UTF-8.
    Empty input also gives ``None``.
    """
    if not data:
        return None
    # The PDF header may legally be preceded by some junk bytes.
    if b"%PDF-" in data[:1024]:
        return PDF_MIME
    if data.startswith(b"PK\x03\x04"):
        return DOCX_MIME if _looks_like_docx(data) else None
    if _HTML_DOCUMENT.match(data[:4096]):
        return HTML_MIME
    text = _decode_text(data)
    if text is None:
        return None
    return _sniff_text_type(data, text)


def _looks_like_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        # A truncated DOCX loses its central directory, but its local file
        # headers still name the Word parts: call it a (broken) DOCX so the
        # user hears "corrupt document" rather than "unsupported type".
        return b"word/document.xml" in data or b"[Content_Types].xml" in data[:4096]


def _decode_text(data: bytes) -> str | None:
    """Decode UTF-8 text, or return ``None`` if this is not plausibly text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    if text and len(_CONTROL_CHARS.findall(text)) / len(text) > MAX_CONTROL_CHAR_RATIO:
        return None
    return text


def _sniff_text_type(data: bytes, text: str) -> str:
    sample = text[:SNIFF_BYTES]
    if _looks_like_markdown(sample):
        return MARKDOWN_MIME
    if _HTML_FRAGMENT.match(data[:4096]):
        return HTML_MIME
    if sniff_csv_dialect(sample, truncated=len(text) > len(sample)) is not None:
        return CSV_MIME
    return TEXT_MIME


def _looks_like_markdown(sample: str) -> bool:
    return bool(
        _MD_HEADING.search(sample)
        or _MD_FENCE.search(sample)
        or _MD_LINK.search(sample)
        or len(MD_LIST_ITEM.findall(sample)) >= 2
    )


def sniff_csv_dialect(sample: str, *, truncated: bool) -> type[csv.Dialect] | None:
    """Return the dialect if ``sample`` is convincingly tabular, else ``None``.

    ``csv.Sniffer`` will find a "delimiter" in almost any prose, so the
    dialect is only accepted when every row of the sample has the same number
    (at least two) of fields.
    """
    if truncated:
        # Drop the partial last line so it cannot skew the row lengths.
        sample = sample[: sample.rfind("\n") + 1]
    if sample.count("\n") < 1:
        return None
    # csv.Sniffer's quote-guessing regex backtracks quadratically on some inputs
    # (a 60 KB line of `a,"` takes seconds), so it only sees the first few KB;
    # the row check below still reads the whole sample, in linear time.
    head = sample[:SNIFF_DIALECT_CHARS]
    if len(sample) > SNIFF_DIALECT_CHARS and "\n" in head:
        head = head[: head.rfind("\n") + 1]
    try:
        dialect = csv.Sniffer().sniff(head, delimiters=",;\t|")
        rows = [row for row in csv.reader(io.StringIO(sample), dialect) if any(cell.strip() for cell in row)]
    except csv.Error:
        return None
    if len(rows) < 2:
        return None
    width = len(rows[0])
    if width < 2 or any(len(row) != width for row in rows):
        return None
    return dialect
