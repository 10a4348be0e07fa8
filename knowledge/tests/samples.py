"""Sample documents for the knowledge tests, built in code so no binary fixtures live in the repo."""

from __future__ import annotations

import functools
import io
import random
import struct
import zipfile

# --------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def _content_stream(lines: list[tuple[int, str]]) -> bytes:
    """Draw each (font size, text) line below the previous one."""
    ops = []
    y = 720
    for size, text in lines:
        ops.append(b"BT /F1 %d Tf 72 %d Td %s Tj ET" % (size, y, _pdf_string(text)))
        y -= size + 12
    return b"\n".join(ops)


def build_pdf(pages: list[list[tuple[int, str]]], bookmarks: list[tuple[str, int]] = ()) -> bytes:
    """A minimal valid PDF: one Helvetica text stream per page and optional bookmarks.

    ``bookmarks`` are (title, page index) pairs, written as the document outline.
    The byte offsets in the cross-reference table are computed, not hard-coded.
    """
    # Object numbers: 1 catalog, 2 page tree, 3 font, then a page and its
    # content stream per page, then the outline root and its items.
    page_ids = [4 + 2 * index for index in range(len(pages))]
    outline_id = 4 + 2 * len(pages)
    item_ids = [outline_id + 1 + index for index in range(len(bookmarks))]
    objects: dict[int, bytes] = {}
    catalog = b"<< /Type /Catalog /Pages 2 0 R"
    if bookmarks:
        catalog += b" /Outlines %d 0 R /PageMode /UseOutlines" % outline_id
    objects[1] = catalog + b" >>"
    kids = b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages))
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    for page_id, lines in zip(page_ids, pages, strict=True):
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        stream = _content_stream(lines)
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    if bookmarks:
        objects[outline_id] = b"<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>" % (
            item_ids[0],
            item_ids[-1],
            len(item_ids),
        )
        for index, ((title, page_index), item_id) in enumerate(zip(bookmarks, item_ids, strict=True)):
            links = b""
            if index > 0:
                links += b" /Prev %d 0 R" % item_ids[index - 1]
            if index < len(item_ids) - 1:
                links += b" /Next %d 0 R" % item_ids[index + 1]
            objects[item_id] = b"<< /Title %s /Parent %d 0 R%s /Dest [%d 0 R /XYZ 0 792 0] >>" % (
                _pdf_string(title),
                outline_id,
                links,
                page_ids[page_index],
            )

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, objects[number]))
    xref_offset = out.tell()
    size = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[number])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref_offset))
    return out.getvalue()


def pdf_two_pages() -> bytes:
    """Two pages, each opening with a large title that is also a bookmark."""
    return build_pdf(
        [
            [(18, "Opening hours"), (12, "We are open Monday to Friday from 9 to 6."), (12, "Closed on holidays.")],
            [(18, "Refunds"), (12, "Refunds are processed within 14 days.")],
        ],
        bookmarks=[("Opening hours", 0), ("Refunds", 1)],
    )


def pdf_without_text() -> bytes:
    """A well-formed PDF whose pages draw nothing (like a scan without OCR)."""
    return build_pdf([[], []])


def pdf_truncated() -> bytes:
    """The two-page sample cut in the middle, as an interrupted upload would be."""
    data = pdf_two_pages()
    return data[: len(data) // 2]


# --------------------------------------------------------------------------
# DOCX
# --------------------------------------------------------------------------


def docx_handbook() -> bytes:
    """A Word document with a title, two headed sections and a table."""
    import docx

    document = docx.Document()
    document.add_heading("Customer handbook", 0)
    document.add_paragraph("Read this before contacting support.")
    document.add_heading("Refund policy", 1)
    document.add_paragraph("Refunds are processed within 14 days.")
    document.add_paragraph("Keep your receipt.")
    document.add_heading("Opening hours", 1)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Weekdays"
    table.cell(0, 1).text = "9 to 6"
    table.cell(1, 0).text = "Saturday"
    table.cell(1, 1).text = "10 to 2"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
)


@functools.lru_cache(maxsize=1)
def docx_zip_bomb() -> bytes:
    """A "DOCX" whose document.xml inflates to 200 MB of zeros (about 200 KB on disk).

    Written through a streaming zip entry one megabyte at a time, so building
    it never holds the 200 MB in memory.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        entry = zipfile.ZipInfo("word/document.xml")
        entry.compress_type = zipfile.ZIP_DEFLATED
        megabyte = bytes(1024 * 1024)
        with archive.open(entry, "w", force_zip64=True) as stream:
            for _ in range(200):
                stream.write(megabyte)
    return out.getvalue()


def docx_with_hidden_payload() -> bytes:
    """A DOCX-looking zip whose document.xml claims 13 bytes but inflates to 20 MB more.

    The declared size is patched in both the local header and the central
    directory, as an attacker hiding a bomb from size checks would do.
    """
    head = b"<w:document/>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        entry = zipfile.ZipInfo("word/document.xml")
        entry.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(entry, "w") as stream:
            stream.write(head)
            for _ in range(20):
                stream.write(bytes(1024 * 1024))
    data = bytearray(out.getvalue())
    declared = struct.pack("<I", len(head))
    # Local file header: uncompressed size at offset 22.
    data[entry.header_offset + 22 : entry.header_offset + 26] = declared
    # Central directory headers (found through the end-of-central-directory
    # record): uncompressed size at offset 24, name length at 28, name at 46.
    end_record = data.rfind(b"PK\x05\x06")
    entry_count, _, central = struct.unpack_from("<HII", data, end_record + 10)
    for _ in range(entry_count):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, central + 28)
        if data[central + 46 : central + 46 + name_length] == b"word/document.xml":
            data[central + 24 : central + 28] = declared
        central += 46 + name_length + extra_length + comment_length
    return bytes(data)


def docx_with_too_many_parts(count: int = 1001) -> bytes:
    """A DOCX-looking zip with ``count`` tiny extra entries."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("word/document.xml", b"<w:document/>")
        for index in range(count):
            archive.writestr(f"word/media/part{index}.bin", b"x")
    return out.getvalue()


BILLION_LAUGHS_DOCUMENT = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b"<!DOCTYPE w:document [\n"
    b'  <!ENTITY lol "lol">\n'
    + b"".join(
        b'  <!ENTITY lol%d "%s">\n' % (level, (b"&lol%d;" % (level - 1) if level > 1 else b"&lol;") * 10)
        for level in range(1, 10)
    )
    + b"]>\n"
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
)


def docx_billion_laughs() -> bytes:
    """The handbook with its document.xml replaced by a billion-laughs entity bomb."""
    source = zipfile.ZipFile(io.BytesIO(docx_handbook()))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename == "word/document.xml":
                content = BILLION_LAUGHS_DOCUMENT
            archive.writestr(entry.filename, content)
    return out.getvalue()


def docx_truncated() -> bytes:
    """The handbook cut in the middle: the zip central directory is gone."""
    data = docx_handbook()
    return data[: len(data) // 2]


def plain_zip() -> bytes:
    """A zip archive that is not a Word document."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return out.getvalue()


# --------------------------------------------------------------------------
# Text formats
# --------------------------------------------------------------------------

HTML_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Acme help centre</title>
  <style>body { color: red; }</style>
  <script>var tracking = "do not index me";</script>
</head>
<body>
  <header><a href="/">Acme logo</a><nav><a href="/pricing">Pricing</a> <a href="/login">Log in</a></nav></header>
  <main>
    <h1>Shipping</h1>
    <p>We ship to <b>all of Europe</b> within 3 days.</p>
    <p>Tracking numbers arrive by e-mail.</p>
    <h2>Returns</h2>
    <ul><li>Returns are free.</li><li>Use the prepaid label.</li></ul>
    <form action="/search"><input name="q"><button>Search this site</button></form>
  </main>
  <aside>Related: our cookie policy</aside>
  <footer>Copyright 2024 Acme. All rights reserved.</footer>
</body>
</html>
"""

MARKDOWN = b"""---
title: Front matter is metadata
---
Welcome to the **Acme** guide.

# Installation

Run the [installer](https://example.com/install) and follow the steps:

- download
- run

```
pip install acme
```

## Configuration #

Set `ACME_KEY` in the environment.

Troubleshooting
---------------

Restart the service.
"""

CSV_FAQ = b"""question,answer
What are your business hours?,We are open Monday to Friday 9 to 6
"Do you ship abroad?","Yes, to all of Europe"
,Only an answer here
"""

PLAIN_TEXT = ("Caf\u0065\u0301 menu\r\n\r\n\r\n\r\nEspresso\t\t costs 2 euros.\x07\nTea   costs 1 euro.\n").encode()


def random_binary(size: int = 8192) -> bytes:
    """Deterministic random bytes, as a renamed executable or image would be."""
    return random.Random(1234).randbytes(size)


def pdf_hard_wrapped() -> bytes:
    """A product sheet whose paragraph is drawn line by line, as PDFs store wrapped text."""
    return build_pdf(
        [
            [
                (18, "Model X fan"),
                (12, "Turbo mode doubles the fan speed and lowers the battery life to about"),
                (12, "four hours; in eco mode the battery lasts up to eleven hours. The"),
                (12, "launch date of the Model X is March 2025."),
            ]
        ],
        bookmarks=[("Model X fan", 0)],
    )
