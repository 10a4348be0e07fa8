"""Plain UTF-8 text (one section) and CSV (one section per row, as ``header: value; ...``)."""

from __future__ import annotations

import csv
import io

from knowledge.parsing.base import INVALID_DOCUMENT, ParseError, Section, check_text_budget
from knowledge.parsing.detect import SNIFF_BYTES, sniff_csv_dialect
from knowledge.sentences import unwrap_text


def parse_text(data: bytes) -> list[Section]:
    text = data.decode("utf-8-sig")
    check_text_budget(len(text))
    # Plain text is often wrapped at a fixed width (mail, READMEs): join the lines back into paragraphs.
    return [Section(text=unwrap_text(text))]


def parse_csv(data: bytes) -> list[Section]:
    """One section per data row: ``"header1: value1; header2: value2"``.

    The first row is taken as the header: ``csv.Sniffer.has_header`` votes
    "no header" for all-text tables (a FAQ's "question,answer"), which are
    exactly the tables people upload to a knowledge base.
    """
    text = data.decode("utf-8-sig")
    check_text_budget(len(text))
    sample = text[:SNIFF_BYTES]
    dialect = sniff_csv_dialect(sample, truncated=len(text) > len(sample))
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
