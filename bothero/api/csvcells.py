"""CSV for downloads, line by line and safe to open in a spreadsheet.

Cells that a spreadsheet would run as a formula (starting with = + - @, a tab
or a carriage return) get a leading single quote (OWASP's CSV-injection advice);
commas, quotes and newlines are quoted by the csv module. Files start with a
UTF-8 byte-order mark so that Excel reads non-ASCII text correctly.
"""

import csv

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BYTE_ORDER_MARK = "\ufeff"


def csv_safe(value) -> str:
    """A cell's text, with a leading quote when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Line:
    """A file-like object whose write returns its argument, so csv.writer yields lines instead of storing them."""

    def write(self, text: str) -> str:
        return text


_writer = csv.writer(_Line())


def csv_line(values) -> str:
    """One CSV line (CRLF-terminated) of formula-safe cells."""
    return _writer.writerow([csv_safe(value) for value in values])


def csv_header(columns) -> str:
    """The byte-order mark and the header line."""
    return BYTE_ORDER_MARK + _writer.writerow(columns)
