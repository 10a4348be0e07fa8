"""Turn uploaded documents into clean text sections.

The type of a document is decided by its content (magic bytes and sniffing),
never by its file name: names are chosen by the uploader and prove nothing.
Every parser works under explicit limits (pages, zip entries, decompressed
size, extracted characters) so that a hostile file fails fast with a
:class:`ParseError` instead of exhausting the worker.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
import xml.sax
import xml.sax.handler
import zipfile
from dataclasses import dataclass, field

import defusedxml.sax
from defusedxml import DefusedXmlException

logger = logging.getLogger(__name__)

PDF_MIME = "application/pdf"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML_MIME = "text/html"
MARKDOWN_MIME = "text/markdown"
TEXT_MIME = "text/plain"
CSV_MIME = "text/csv"

#: PDFs with more pages than this are refused rather than parsed.
MAX_PDF_PAGES = 2000
#: A DOCX is a zip archive; these bound what it may expand to.
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
#: Cap on the extracted text of one document, whatever its format.
MAX_TEXT_CHARS = 10_000_000
#: Text with more control characters than this (relative to its length) is
#: treated as binary data with a misleading name.
MAX_CONTROL_CHAR_RATIO = 0.05
#: How much of a text file the markdown/CSV sniffers look at.
SNIFF_BYTES = 64 * 1024
#: How much of that sample csv.Sniffer itself is given (it is quadratic at worst).
SNIFF_DIALECT_CHARS = 4 * 1024

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
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")


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
_MD_LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S", re.MULTILINE)


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
    if _sniff_csv_dialect(sample, truncated=len(text) > len(sample)) is not None:
        return CSV_MIME
    return TEXT_MIME


def _looks_like_markdown(sample: str) -> bool:
    return bool(
        _MD_HEADING.search(sample)
        or _MD_FENCE.search(sample)
        or _MD_LINK.search(sample)
        or len(_MD_LIST_ITEM.findall(sample)) >= 2
    )


def _sniff_csv_dialect(sample: str, *, truncated: bool) -> type[csv.Dialect] | None:
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


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


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
    sections = _finish_sections(raw_sections)
    if not sections:
        raise ParseError(EMPTY_DOCUMENT, f"{label} contains no extractable text.")
    return ParsedDocument(content_type=content_type, sections=sections)


def _finish_sections(raw_sections: list[Section]) -> list[Section]:
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


def _check_text_budget(chars: int) -> None:
    # Checked while extracting, so a huge document stops early instead of
    # being extracted in full and refused afterwards.
    if chars > MAX_TEXT_CHARS:
        raise ParseError(
            DOCUMENT_TOO_LARGE,
            f"The document has more than {MAX_TEXT_CHARS:,} characters of text.",
        )


# --------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------


def _parse_pdf(data: bytes) -> list[Section]:
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
            _check_text_budget(chars)
            sections.append(Section(text=text, heading=headings[index], page=index + 1))
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


class _StopAtRootElement(Exception):
    """Raised once the root element starts: no DTD can follow it."""


class _PrologHandler(xml.sax.handler.ContentHandler):
    def startElement(self, name, attrs):
        raise _StopAtRootElement

    def startElementNS(self, name, qname, attrs):
        raise _StopAtRootElement


def _check_docx_archive(data: bytes) -> None:
    """Refuse zip bombs and XML entity tricks before python-docx sees the file."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ParseError(INVALID_DOCUMENT, "The DOCX file is damaged or truncated.") from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise ParseError(
                DOCUMENT_TOO_LARGE,
                f"The DOCX archive has {len(entries):,} parts; the limit is {MAX_ZIP_ENTRIES:,}.",
            )
        # zipfile never inflates an entry past its declared size (and fails
        # the CRC check if the data is longer), so the declared sizes are a
        # trustworthy bound on what reading the archive can cost.
        declared = sum(entry.file_size for entry in entries)
        if declared > MAX_ZIP_UNCOMPRESSED_BYTES:
            raise ParseError(
                DOCUMENT_TOO_LARGE,
                f"The DOCX expands to {declared // (1024 * 1024):,} MB; "
                f"the limit is {MAX_ZIP_UNCOMPRESSED_BYTES // (1024 * 1024):,} MB.",
            )
        for entry in entries:
            if entry.filename.endswith((".xml", ".rels")):
                _check_xml_part(archive, entry)


def _check_xml_part(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> None:
    """Parse the prolog of an XML part with defusedxml, refusing any DTD.

    A DTD (and so any entity declaration) may only appear before the root
    element, so parsing stops at the root: this costs a few bytes per part
    however large the part is.
    """
    try:
        with archive.open(entry) as stream:
            defusedxml.sax.parse(stream, _PrologHandler(), forbid_dtd=True)
    except _StopAtRootElement:
        return
    except DefusedXmlException as exc:
        raise ParseError(
            INVALID_DOCUMENT,
            f"The DOCX part {entry.filename} declares a DTD or entities, which is not allowed.",
        ) from exc
    except xml.sax.SAXException as exc:
        raise ParseError(INVALID_DOCUMENT, f"The DOCX part {entry.filename} is not valid XML.") from exc
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        # Includes an entry that inflates past its declared size (CRC error).
        raise ParseError(INVALID_DOCUMENT, f"The DOCX part {entry.filename} is damaged.") from exc


def _parse_docx(data: bytes) -> list[Section]:
    _check_docx_archive(data)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        sections: list[Section] = []
        heading: str | None = None
        paragraphs: list[str] = []
        chars = 0
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                text = _docx_table_text(block)
            else:
                text = block.text
                if _is_docx_heading(block):
                    sections.append(Section(text="\n\n".join(paragraphs), heading=heading))
                    heading, paragraphs = text, []
                    continue
            chars += len(text)
            _check_text_budget(chars)
            paragraphs.append(text)
        sections.append(Section(text="\n\n".join(paragraphs), heading=heading))
    except ParseError:
        raise
    except Exception as exc:
        # python-docx reports malformed packages with assorted exceptions
        # (KeyError, XMLSyntaxError, PackageNotFoundError...).
        logger.info("DOCX parsing failed: %r", exc)
        raise ParseError(INVALID_DOCUMENT, "The DOCX file is damaged and cannot be read.") from exc
    return sections


def _is_docx_heading(paragraph) -> bool:
    style = paragraph.style
    name = (style.name or "").lower() if style is not None else ""
    return name.startswith("heading") or name == "title"


def _docx_table_text(table) -> str:
    """One line per table row, cells separated by " | "."""
    lines = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            # Merged cells are reported once per grid column they cover.
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------

_HTML_BOILERPLATE = [
    "script", "style", "noscript", "template", "nav", "aside", "form", "iframe",
    "svg", "canvas", "button", "select", "textarea", "input", "object", "embed",
]  # fmt: skip
_HTML_BOILERPLATE_ROLES = ["navigation", "banner", "contentinfo", "complementary", "search"]
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = {
    "address", "article", "blockquote", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "header", "hr", "li", "main", "ol", "p",
    "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
}  # fmt: skip
_HTML_CELLS = {"td", "th"}
_WHITESPACE = re.compile(r"\s+")


class _BlockEnd:
    """Marker pushed on the walk stack to close a block element."""


_BLOCK_END = _BlockEnd()


def _parse_html(data: bytes) -> list[Section]:
    from bs4 import BeautifulSoup, CData, NavigableString, Tag

    # Handing bytes to BeautifulSoup lets it honour the page's declared charset.
    soup = BeautifulSoup(data, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    _drop_html_boilerplate(soup)
    articles = soup.find_all("article")
    root = (
        soup.find("main")
        or soup.find(attrs={"role": "main"})
        or (articles[0] if len(articles) == 1 else None)
        or soup.body
        or soup
    )

    sections: list[Section] = []
    heading = title
    paragraphs: list[str] = []
    pieces: list[str] = []
    chars = 0

    def flush_paragraph() -> None:
        nonlocal chars
        text = "".join(pieces).strip()
        pieces.clear()
        if text:
            chars += len(text)
            _check_text_budget(chars)
            paragraphs.append(text)

    # Iterative walk (an explicit stack, not recursion) so deeply nested
    # markup cannot hit the recursion limit.
    stack: list = [root]
    while stack:
        node = stack.pop()
        if node is _BLOCK_END:
            flush_paragraph()
        elif isinstance(node, NavigableString):
            # Comments, doctypes and processing instructions are subclasses.
            if type(node) in (NavigableString, CData):
                pieces.append(_WHITESPACE.sub(" ", str(node)))
        elif isinstance(node, Tag):
            name = node.name
            if name in _HTML_HEADINGS:
                flush_paragraph()
                sections.append(Section(text="\n\n".join(paragraphs), heading=heading))
                heading, paragraphs = node.get_text(" ", strip=True), []
            elif name == "br":
                pieces.append("\n")
            elif name == "pre":
                # Preformatted text keeps its own line breaks.
                flush_paragraph()
                pieces.append(node.get_text())
                flush_paragraph()
            else:
                if name in _HTML_CELLS:
                    pieces.append(" ")
                elif name in _HTML_BLOCKS:
                    flush_paragraph()
                    stack.append(_BLOCK_END)
                stack.extend(reversed(node.contents))
    flush_paragraph()
    sections.append(Section(text="\n\n".join(paragraphs), heading=heading))
    return sections


def _drop_html_boilerplate(soup) -> None:
    """Remove scripts, navigation, forms, sidebars and page-level header/footer."""
    doomed = list(soup.find_all(_HTML_BOILERPLATE))
    doomed += soup.find_all(attrs={"role": _HTML_BOILERPLATE_ROLES})
    doomed += soup.find_all(attrs={"aria-hidden": "true"})
    doomed += soup.find_all(hidden=True)
    # A <header> inside an article usually holds the article's title, so
    # only page-level headers and footers are boilerplate.
    doomed += [tag for tag in soup.find_all(["header", "footer"]) if not tag.find_parent(["article", "main"])]
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------

_MD_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_MD_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_MD_THEMATIC_BREAK = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_MD_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+")
_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_MD_INLINE_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)")
_MD_REFERENCE_LINK = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
_MD_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")


def _parse_markdown(data: bytes) -> list[Section]:
    text = data.decode("utf-8-sig")
    _check_text_budget(len(text))
    lines = _strip_front_matter(text.splitlines())
    sections: list[Section] = []
    heading: str | None = None
    body: list[str] = []
    fence: str | None = None
    for line in lines:
        fence_match = _MD_FENCE_LINE.match(line)
        if fence is not None:
            # Inside a code block everything is content, until the closing fence.
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            else:
                body.append(line)
            continue
        if fence_match:
            fence = fence_match.group(1)
            continue
        atx = _MD_ATX.match(line)
        if atx:
            sections.append(Section(text="\n".join(body), heading=heading))
            heading, body = _md_inline(atx.group(2) or ""), []
            continue
        if _MD_SETEXT.match(line) and _is_single_line_paragraph(body):
            # "Title\n=====": the line above was the heading, not content.
            title = body.pop()
            sections.append(Section(text="\n".join(body), heading=heading))
            heading, body = _md_inline(title), []
            continue
        if _MD_THEMATIC_BREAK.match(line) or _MD_LINK_DEFINITION.match(line):
            continue
        body.append(_md_inline(line))
    sections.append(Section(text="\n".join(body), heading=heading))
    return sections


def _strip_front_matter(lines: list[str]) -> list[str]:
    """Drop a leading YAML front-matter block (``---`` ... ``---``)."""
    if lines and lines[0].strip() == "---":
        for index, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                return lines[index + 1 :]
    return lines


def _is_single_line_paragraph(body: list[str]) -> bool:
    if not body or not body[-1].strip():
        return False
    if _MD_LIST_ITEM.match(body[-1]) or body[-1].lstrip().startswith(">"):
        return False
    return len(body) == 1 or not body[-2].strip()


def _md_inline(text: str) -> str:
    """Reduce links and images to their visible text."""
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_INLINE_LINK.sub(r"\1", text)
    text = _MD_REFERENCE_LINK.sub(r"\1", text)
    return _MD_AUTOLINK.sub(r"\1", text)


# --------------------------------------------------------------------------
# Plain text and CSV
# --------------------------------------------------------------------------


def _parse_text(data: bytes) -> list[Section]:
    text = data.decode("utf-8-sig")
    _check_text_budget(len(text))
    return [Section(text=text)]


def _parse_csv(data: bytes) -> list[Section]:
    """One section per data row: ``"header1: value1; header2: value2"``.

    The first row is taken as the header: ``csv.Sniffer.has_header`` votes
    "no header" for all-text tables (a FAQ's "question,answer"), which are
    exactly the tables people upload to a knowledge base.
    """
    text = data.decode("utf-8-sig")
    _check_text_budget(len(text))
    sample = text[:SNIFF_BYTES]
    dialect = _sniff_csv_dialect(sample, truncated=len(text) > len(sample))
    if dialect is None:
        raise ParseError(INVALID_DOCUMENT, "The CSV file has inconsistent rows.")
    sections = []
    try:
        rows = csv.reader(io.StringIO(text), dialect)
        header: list[str] | None = None
        for row in rows:
            if header is None:
                if any(cell.strip() for cell in row):
                    header = [" ".join(name.split()) for name in row]
                continue
            pairs = []
            for index, value in enumerate(row):
                value = " ".join(value.split())
                if value:
                    name = header[index] if index < len(header) and header[index] else f"column {index + 1}"
                    pairs.append(f"{name}: {value}")
            if pairs:
                sections.append(Section(text="; ".join(pairs)))
    except csv.Error as exc:
        raise ParseError(INVALID_DOCUMENT, f"The CSV file is malformed: {exc}.") from exc
    return sections


_PARSERS = {
    PDF_MIME: _parse_pdf,
    DOCX_MIME: _parse_docx,
    HTML_MIME: _parse_html,
    MARKDOWN_MIME: _parse_markdown,
    TEXT_MIME: _parse_text,
    CSV_MIME: _parse_csv,
}
