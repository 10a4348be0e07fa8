"""DOCX: paragraphs under their headings, tables as text; the archive and its XML checked first."""

from __future__ import annotations

import io
import logging
import xml.sax
import xml.sax.handler
import zipfile

import defusedxml.sax
from defusedxml import DefusedXmlException

from knowledge.parsing.base import DOCUMENT_TOO_LARGE, INVALID_DOCUMENT, ParseError, Section, check_text_budget

logger = logging.getLogger(__name__)

#: A DOCX is a zip archive; these bound what it may expand to.
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_UNCOMPRESSED_BYTES = 100 * 1024 * 1024


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


def parse_docx(data: bytes) -> list[Section]:
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
            check_text_budget(chars)
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
