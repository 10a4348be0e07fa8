"""Sentences out of parsed text: hard-wrapped lines joined back, units kept apart, abbreviations not cut."""

from knowledge.sentences import content_words, split_sentences, unwrap_lines

PDF_PAGE = """Turbo mode doubles the fan speed and lowers the battery life to about
four hours; in eco mode the battery lasts up to eleven hours. The
launch date of the Model X is March 2025.
"""


def test_hard_wrapped_lines_of_a_pdf_page_are_joined_before_sentences_are_cut():
    assert split_sentences(PDF_PAGE) == [
        "Turbo mode doubles the fan speed and lowers the battery life to about four hours; in eco mode the "
        "battery lasts up to eleven hours.",
        "The launch date of the Model X is March 2025.",
    ]


def test_a_line_ending_a_sentence_and_the_next_one_are_two_sentences_of_one_paragraph():
    text = (
        "We're open Monday through Friday, 9 AM to 6 PM EST. We are closed on weekends.\nOrders are answered next day."
    )
    assert split_sentences(text) == [
        "We're open Monday through Friday, 9 AM to 6 PM EST.",
        "We are closed on weekends.",
        "Orders are answered next day.",
    ]
    assert len(unwrap_lines(text)) == 1


def test_list_items_titles_and_paragraphs_stay_units_of_their_own():
    text = "Steps:\n1. Open Settings.\n2. Click Sound.\n- Switch it on\n\nShort title\nAnother line"
    assert unwrap_lines(text) == ["Steps:", "1. Open Settings.", "2. Click Sound.", "- Switch it on", "Short title",
                                  "Another line"]  # fmt: skip


def test_abbreviations_initials_and_decimals_do_not_end_a_sentence():
    text = "Ask Dr. Smith, e.g. by mail. It costs $4.99 in the U.S. Army store. J. Doe agrees."
    assert split_sentences(text) == [
        "Ask Dr. Smith, e.g. by mail.",
        "It costs $4.99 in the U.S. Army store.",
        "J. Doe agrees.",
    ]


def test_content_words_leave_out_stop_words_and_fold_plurals():
    assert content_words("What are your refunds and shipping prices?") == {"refund", "ship", "price"}
