import itertools
import re
import time

import pytest
from tokenizers import Tokenizer

from knowledge.chunking import chunk_sections
from knowledge.embeddings import load_tokenizer
from knowledge.parsing import Section


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return load_tokenizer()


def count_tokens(tokenizer: Tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def long_text(paragraphs: int = 12, sentences: int = 8) -> str:
    """Numbered sentences, so every sentence is distinct and traceable."""
    return "\n\n".join(
        " ".join(
            f"Sentence {p}.{s} explains how the refund process works for order number {p * 100 + s}."
            for s in range(sentences)
        )
        for p in range(paragraphs)
    )


def test_it_keeps_a_short_section_as_one_chunk(tokenizer):
    chunks = chunk_sections([Section("Refunds take 14 days.", heading="Refunds", page=3)], tokenizer=tokenizer)

    assert len(chunks) == 1
    chunk = chunks[0]
    assert (chunk.text, chunk.position, chunk.heading, chunk.page) == ("Refunds take 14 days.", 0, "Refunds", 3)
    assert chunk.token_count == count_tokens(tokenizer, "Refunds take 14 days.")


def test_its_token_counts_match_the_tokenizer_and_respect_the_limit(tokenizer):
    chunks = chunk_sections([Section(long_text())], tokenizer=tokenizer, max_tokens=100, overlap_tokens=20)

    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.token_count == count_tokens(tokenizer, chunk.text)
        assert chunk.token_count <= 100
        # Not degenerate either: a clean break is only taken past half the budget.
        assert chunk.token_count >= 50 or chunk is chunks[-1]


def test_it_never_splits_a_word(tokenizer):
    text = long_text()
    words = set(text.split())

    chunks = chunk_sections([Section(text)], tokenizer=tokenizer, max_tokens=37, overlap_tokens=9)

    for chunk in chunks:
        assert chunk.text in text
        assert set(chunk.text.split()) <= words
        start = text.index(chunk.text)
        assert start == 0 or text[start - 1].isspace()
        end = start + len(chunk.text)
        assert end == len(text) or text[end].isspace()


def test_it_prefers_to_cut_at_sentence_ends(tokenizer):
    chunks = chunk_sections([Section(long_text())], tokenizer=tokenizer, max_tokens=100, overlap_tokens=20)

    assert all(chunk.text.endswith(".") for chunk in chunks)
    # Overlaps start at a sentence too.
    assert all(chunk.text.startswith("Sentence") for chunk in chunks)


def test_it_prefers_to_cut_at_paragraph_ends(tokenizer):
    paragraph = "This sentence has exactly some words in it. " * 4
    text = "\n\n".join([paragraph.strip()] * 6)
    per_paragraph = count_tokens(tokenizer, paragraph)

    chunks = chunk_sections([Section(text)], tokenizer=tokenizer, max_tokens=per_paragraph * 2 + 5, overlap_tokens=0)

    assert [chunk.text for chunk in chunks] == ["\n\n".join([paragraph.strip()] * 2)] * 3


def test_consecutive_chunks_overlap(tokenizer):
    chunks = chunk_sections([Section(long_text())], tokenizer=tokenizer, max_tokens=100, overlap_tokens=30)

    for previous, current in itertools.pairwise(chunks):
        first_sentence = re.match(r"Sentence \d+\.\d+", current.text).group()
        assert first_sentence in previous.text


def test_it_can_chunk_without_overlap(tokenizer):
    text = long_text()

    chunks = chunk_sections([Section(text)], tokenizer=tokenizer, max_tokens=60, overlap_tokens=0)

    assert " ".join(" ".join(chunk.text.split()) for chunk in chunks) == " ".join(text.split())


def test_it_numbers_chunks_across_sections_and_never_mixes_sections(tokenizer):
    sections = [
        Section(long_text(3), heading="Intro", page=1),
        Section(long_text(3), heading="Intro", page=2),
        Section(long_text(3), heading="Refunds", page=2),
    ]

    chunks = chunk_sections(sections, tokenizer=tokenizer, max_tokens=80, overlap_tokens=10)

    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
    keys = [(chunk.heading, chunk.page) for chunk in chunks]
    assert keys == sorted(keys, key=[("Intro", 1), ("Intro", 2), ("Refunds", 2)].index)
    assert set(keys) == {("Intro", 1), ("Intro", 2), ("Refunds", 2)}
    assert all(chunk.text in sections[0].text for chunk in chunks)


def test_it_cuts_a_giant_word_at_token_boundaries(tokenizer):
    url = "https://example.com/" + "-".join(f"segment{n}" for n in range(200))
    text = f"See {url} for details."

    chunks = chunk_sections([Section(text)], tokenizer=tokenizer, max_tokens=50, overlap_tokens=0)

    assert len(chunks) > 10
    assert all(45 <= chunk.token_count <= 50 for chunk in chunks[:-1])
    assert chunks[0].text.startswith("See https://example.com/")
    assert chunks[-1].text.endswith("for details.")
    # Nothing lost or duplicated: the pieces put back together are the text.
    assert "".join("".join(chunk.text.split()) for chunk in chunks) == "".join(text.split())


def test_it_overlaps_inside_a_giant_word(tokenizer):
    text = "x" + "-y" * 300

    chunks = chunk_sections([Section(text)], tokenizer=tokenizer, max_tokens=50, overlap_tokens=10)

    for previous, current in itertools.pairwise(chunks):
        assert previous.text[-10:] in current.text


def test_it_skips_empty_sections(tokenizer):
    chunks = chunk_sections([Section(""), Section("  \n "), Section("Hello.")], tokenizer=tokenizer)

    assert [(chunk.text, chunk.position) for chunk in chunks] == [("Hello.", 0)]


def test_it_ignores_the_padding_and_truncation_of_a_raw_tokenizer_json(tokenizer):
    # The shipped tokenizer.json pads and truncates to 128 tokens.
    raw = Tokenizer.from_str(tokenizer.to_str())
    raw.enable_truncation(128)
    raw.enable_padding(length=128)

    chunks = chunk_sections([Section("Short text.")], tokenizer=raw)

    assert chunks[0].token_count == count_tokens(tokenizer, "Short text.")


@pytest.mark.parametrize(("max_tokens", "overlap_tokens"), [(0, 0), (10, 10), (10, -1)])
def test_it_rejects_inconsistent_limits(tokenizer, max_tokens, overlap_tokens):
    with pytest.raises(ValueError, match="tokens"):
        chunk_sections([Section("x")], tokenizer=tokenizer, max_tokens=max_tokens, overlap_tokens=overlap_tokens)


def test_it_chunks_a_long_document_quickly(tokenizer):
    text = long_text(paragraphs=400, sentences=10)  # about 350 KB, 72k tokens

    started = time.perf_counter()
    chunks = chunk_sections([Section(text)], tokenizer=tokenizer)
    elapsed = time.perf_counter() - started

    assert len(chunks) >= 400
    # Embedding 400 chunks takes tens of seconds; chunking must be negligible.
    assert elapsed < 2
