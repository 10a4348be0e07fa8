import time
import tracemalloc

import pytest

from knowledge import parsing
from knowledge.parsing import (
    CSV_MIME,
    DOCX_MIME,
    HTML_MIME,
    MARKDOWN_MIME,
    PDF_MIME,
    TEXT_MIME,
    ParseError,
    clean_text,
    detect_content_type,
    parse_document,
)
from knowledge.tests import samples


def parse_error(data: bytes, **kwargs) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_document(data, **kwargs)
    return caught.value


def assert_fails_fast_and_small(data: bytes, code: str) -> None:
    """The parser must refuse a hostile file in well under a second and a few MB."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        error = parse_error(data)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.code == code
    assert elapsed < 2
    assert peak < 20 * 1024 * 1024


# Detection ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (samples.pdf_two_pages(), PDF_MIME),
        (samples.docx_handbook(), DOCX_MIME),
        (samples.HTML_PAGE, HTML_MIME),
        (b"<p>An HTML fragment</p>\n<p>without a document around it</p>", HTML_MIME),
        (samples.MARKDOWN, MARKDOWN_MIME),
        (samples.CSV_FAQ, CSV_MIME),
        (samples.PLAIN_TEXT, TEXT_MIME),
        (samples.plain_zip(), None),
        (samples.random_binary(), None),
        (b"", None),
    ],
)
def test_it_detects_the_type_from_the_content(data, expected):
    assert detect_content_type(data) == expected


def test_it_ignores_a_misleading_file_name():
    document = parse_document(samples.pdf_two_pages(), filename="notes.txt")

    assert document.content_type == PDF_MIME


def test_it_treats_prose_with_commas_as_plain_text_not_csv():
    text = b"Hello, this is a note.\nIt has commas, in places, but no table.\nSee you soon.\n"

    assert detect_content_type(text) == TEXT_MIME


def test_it_treats_a_readme_opening_with_html_as_markdown():
    readme = b'<p align="center"><img src="logo.png"></p>\n\n# Project\n\nSome text.\n'

    assert detect_content_type(readme) == MARKDOWN_MIME


# PDF ----------------------------------------------------------------------


def test_it_extracts_pdf_text_with_page_numbers_and_bookmark_headings():
    document = parse_document(samples.pdf_two_pages())

    assert [(s.page, s.heading) for s in document.sections] == [(1, "Opening hours"), (2, "Refunds")]
    assert "We are open Monday to Friday from 9 to 6." in document.sections[0].text
    assert "Refunds are processed within 14 days." in document.sections[1].text


def test_it_rejects_a_truncated_pdf():
    assert_fails_fast_and_small(samples.pdf_truncated(), "invalid_document")


def test_it_reports_a_pdf_without_text_as_empty():
    assert parse_error(samples.pdf_without_text()).code == "empty_document"


def test_it_refuses_a_pdf_with_too_many_pages(monkeypatch):
    monkeypatch.setattr(parsing.pdf, "MAX_PDF_PAGES", 1)

    error = parse_error(samples.pdf_two_pages())

    assert error.code == "document_too_large"
    assert "2 pages" in error.message


# DOCX ---------------------------------------------------------------------


def test_it_extracts_docx_paragraphs_under_their_headings():
    document = parse_document(samples.docx_handbook())

    assert document.content_type == DOCX_MIME
    assert [(s.heading, s.text) for s in document.sections] == [
        ("Customer handbook", "Read this before contacting support."),
        ("Refund policy", "Refunds are processed within 14 days.\n\nKeep your receipt."),
        ("Opening hours", "Weekdays | 9 to 6\nSaturday | 10 to 2"),
    ]
    assert all(s.page is None for s in document.sections)


def test_it_rejects_a_docx_zip_bomb():
    assert_fails_fast_and_small(samples.docx_zip_bomb(), "document_too_large")


def test_it_rejects_a_docx_with_too_many_parts():
    assert_fails_fast_and_small(samples.docx_with_too_many_parts(), "document_too_large")


def test_it_rejects_a_docx_with_a_billion_laughs_entity_bomb():
    data = samples.docx_billion_laughs()
    assert_fails_fast_and_small(data, "invalid_document")
    assert "DTD" in parse_error(data).message


def test_it_rejects_a_docx_whose_zip_entry_lies_about_its_size():
    # The entry claims 13 bytes but inflates to 13 bytes + 20 MB of zeros:
    # zipfile stops at the declared size and the CRC check fails.
    assert_fails_fast_and_small(samples.docx_with_hidden_payload(), "invalid_document")


def test_it_rejects_a_truncated_docx():
    assert_fails_fast_and_small(samples.docx_truncated(), "invalid_document")


def test_it_rejects_a_zip_that_is_not_a_docx():
    assert parse_error(samples.plain_zip()).code == "unsupported_file_type"


# HTML ---------------------------------------------------------------------


def test_it_keeps_the_main_html_content_and_drops_the_boilerplate():
    document = parse_document(samples.HTML_PAGE)

    assert document.content_type == HTML_MIME
    assert [(s.heading, s.text) for s in document.sections] == [
        ("Shipping", "We ship to all of Europe within 3 days.\n\nTracking numbers arrive by e-mail."),
        ("Returns", "Returns are free.\n\nUse the prepaid label."),
    ]
    for boilerplate in ("Acme logo", "Pricing", "tracking", "color", "Search", "cookie", "Copyright"):
        assert boilerplate not in document.text


def test_it_uses_the_html_title_as_heading_for_text_before_the_first_heading():
    page = b"<html><head><title>FAQ</title></head><body><p>Intro text.</p><h2>Q1</h2><p>A1.</p></body></html>"

    document = parse_document(page)

    assert [(s.heading, s.text) for s in document.sections] == [("FAQ", "Intro text."), ("Q1", "A1.")]


def test_it_keeps_an_article_header_but_drops_the_page_header():
    page = (
        b"<html><body><header>Site menu</header>"
        b"<article><header><h1>Release notes</h1></header><p>Version 2 is out.</p></article>"
        b"<footer>Legal</footer></body></html>"
    )

    document = parse_document(page)

    assert [(s.heading, s.text) for s in document.sections] == [("Release notes", "Version 2 is out.")]


def test_it_decodes_html_in_its_declared_charset():
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>Café crème</p></body></html>'.encode("latin-1")

    assert parse_document(page).text == "Café crème"


def test_it_survives_very_deeply_nested_html():
    page = b"<html><body>" + b"<div>" * 5000 + b"<p>deep</p>" + b"</div>" * 5000 + b"</body></html>"

    assert "deep" in parse_document(page).text


# Markdown -----------------------------------------------------------------


def test_it_splits_markdown_on_headings_and_flattens_links():
    document = parse_document(samples.MARKDOWN)

    assert document.content_type == MARKDOWN_MIME
    assert [(s.heading, s.text) for s in document.sections] == [
        (None, "Welcome to the **Acme** guide."),
        ("Installation", "Run the installer and follow the steps:\n\n- download\n- run\n\npip install acme"),
        ("Configuration", "Set `ACME_KEY` in the environment."),
        ("Troubleshooting", "Restart the service."),
    ]


def test_it_does_not_take_comments_in_markdown_code_blocks_for_headings():
    text = b"# Setup\n\n```bash\n# install it\npip install acme\n```\n"

    document = parse_document(text)

    assert [(s.heading, s.text) for s in document.sections] == [("Setup", "# install it\npip install acme")]


# CSV ----------------------------------------------------------------------


def test_it_turns_each_csv_row_into_a_header_value_passage():
    document = parse_document(samples.CSV_FAQ)

    assert document.content_type == CSV_MIME
    assert [s.text for s in document.sections] == [
        "question: What are your business hours?; answer: We are open Monday to Friday 9 to 6",
        "question: Do you ship abroad?; answer: Yes, to all of Europe",
        "answer: Only an answer here",
    ]


def test_it_sniffs_semicolon_separated_csv():
    document = parse_document(b"name;price\nEspresso;2\nTea;1\n")

    assert document.content_type == CSV_MIME
    assert [s.text for s in document.sections] == ["name: Espresso; price: 2", "name: Tea; price: 1"]


# Plain text and errors ----------------------------------------------------


def test_it_cleans_plain_text():
    document = parse_document(samples.PLAIN_TEXT)

    assert document.content_type == TEXT_MIME
    # NFC joins "e" + combining acute; the BEL is stripped; blank lines collapse.
    assert document.text == "Café menu\n\nEspresso costs 2 euros.\nTea costs 1 euro."


def test_it_rejects_random_binary_bytes_named_txt():
    error = parse_error(samples.random_binary(), filename="report.txt")

    assert error.code == "unsupported_file_type"
    assert "report.txt" in error.message


def test_it_rejects_text_containing_nul_bytes():
    assert parse_error(b"looks like text\x00but is not").code == "unsupported_file_type"


def test_it_rejects_ascii_full_of_control_characters():
    assert parse_error(b"ab\x01\x02\x03cd\x04\x05\x06" * 100).code == "unsupported_file_type"


def test_it_rejects_text_that_is_not_utf8():
    assert parse_error("Café".encode("latin-1") * 10).code == "unsupported_file_type"


@pytest.mark.parametrize("data", [b"", b"   \n\t\n", "\ufeff".encode()])
def test_it_reports_an_empty_file_as_empty(data):
    assert parse_error(data).code == "empty_document"


def test_it_refuses_a_document_with_too_much_text(monkeypatch):
    monkeypatch.setattr(parsing.base, "MAX_TEXT_CHARS", 100)

    assert parse_error(b"word " * 100).code == "document_too_large"


def test_clean_text_normalises_whitespace_and_invisible_characters():
    raw = "  soft\u00adhyphen\u200b and\u00a0nbsp\t\ttabs \r\nnext\x0cpage\n\n\n\nend  "

    assert clean_text(raw) == "softhyphen and nbsp tabs\nnext\npage\n\nend"


def test_it_sniffs_a_pathological_csv_line_quickly():
    # csv.Sniffer alone spends ~10 s on this 60 KB line (quadratic backtracking); uploads sniff in the request.
    data = b'a,"' * 20000 + b"\n"
    started = time.monotonic()

    detect_content_type(data)

    assert time.monotonic() - started < 2


SIGINT_DURING_PARSE = """
import os, signal, threading, time
from knowledge.sandbox import parse_in_subprocess
data = ("# Title\\n\\n" + "Some words about widgets and shipping. " * 20000).encode()
result = {}
def parse():
    try:
        result["sections"] = len(parse_in_subprocess(data, filename="x.md", timeout_seconds=60, memory_limit_mb=1024).sections)
    except Exception as exc:
        result["error"] = repr(exc)
thread = threading.Thread(target=parse)
thread.start()
time.sleep(0.3)
try:
    os.killpg(os.getpgrp(), signal.SIGINT)  # what Ctrl-C at the terminal does to `make run`
    time.sleep(0.1)
except KeyboardInterrupt:
    pass
thread.join()
print(result)
"""


def test_a_ctrl_c_at_the_terminal_does_not_break_a_parse_in_progress():
    import subprocess
    import sys

    from django.conf import settings

    done = subprocess.run(
        [sys.executable, "-c", SIGINT_DURING_PARSE],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # its own process group: the SIGINT stays there
    )
    assert done.stdout.strip() == "{'sections': 1}", done.stdout + done.stderr


def test_a_pdf_pages_hard_wrapped_lines_are_joined_into_its_paragraph():
    (section,) = parse_document(samples.pdf_hard_wrapped()).sections

    assert section.text.splitlines() == [
        "Model X fan",
        "Turbo mode doubles the fan speed and lowers the battery life to about four hours; in eco mode the "
        "battery lasts up to eleven hours. The launch date of the Model X is March 2025.",
    ]


def test_a_text_files_wrapped_paragraphs_are_joined_and_kept_apart():
    data = b"Returns are free within thirty days of\ndelivery for every order.\n\nShort title\nAnother line\n"

    (section,) = parse_document(data, filename="policy.txt").sections

    assert section.text == (
        "Returns are free within thirty days of delivery for every order.\n\nShort title\nAnother line"
    )
