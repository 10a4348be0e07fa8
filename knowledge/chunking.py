"""Split parsed sections into overlapping, token-bounded chunks for embedding.

Token counts come from the embedding model's own tokenizer, so a chunk of
``max_tokens`` really fits the model's window. Chunks are cut on word
boundaries, preferably at the end of a paragraph, then of a sentence, then of a
line. Each section is chunked on its own, so a chunk never mixes two headings
or two pages.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from knowledge.parsing import Section

_WORD = re.compile(r"\S+")
# A word that closes a sentence, allowing closing quotes and brackets.
_SENTENCE_END = re.compile("[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\\]]*$")

# How good a place to cut is, from "mid-text" to "end of paragraph".
_NO_BREAK, _LINE_BREAK, _SENTENCE_BREAK, _PARAGRAPH_BREAK = range(4)


@dataclass
class Chunk:
    """A passage ready to embed, with its place in the document."""

    text: str
    position: int
    heading: str | None
    page: int | None
    token_count: int


def chunk_sections(
    sections: Iterable[Section],
    *,
    tokenizer: Tokenizer,
    max_tokens: int = 256,
    overlap_tokens: int = 32,
) -> list[Chunk]:
    """Chunk ``sections`` into passages of at most ``max_tokens`` tokens.

    Consecutive chunks of a section share up to ``overlap_tokens`` tokens of
    context, starting at a sentence start when one is available.
    ``token_count`` counts the text's tokens without the model's special
    tokens ([CLS]/[SEP]), so a chunk of exactly ``max_tokens`` is two tokens
    over a 256-token model window; the overlap covers what truncation drops.
    A single "word" longer than ``max_tokens`` (a URL, an unspaced CJK
    paragraph) is the one case that is cut inside a word, at token boundaries.
    Positions run from 0 to n-1 across the whole document.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be between 0 and max_tokens - 1")
    sections = list(sections)
    tokenizer = _counting_tokenizer(tokenizer)
    spans = [[match.span() for match in _WORD.finditer(section.text)] for section in sections]
    counts, long_word_offsets = _count_word_tokens(sections, spans, tokenizer, max_tokens)

    chunks: list[Chunk] = []
    for section, section_spans in zip(sections, spans, strict=True):
        words = _Words(section.text, section_spans, counts, long_word_offsets)
        for start, end in _windows(words, max_tokens, overlap_tokens):
            chunks.append(
                Chunk(
                    text=section.text[words.spans[start][0] : words.spans[end - 1][1]],
                    position=len(chunks),
                    heading=section.heading,
                    page=section.page,
                    token_count=words.prefix[end] - words.prefix[start],
                )
            )
    return chunks


def _counting_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """Return a tokenizer that neither truncates nor pads.

    tokenizer.json files often ship with both enabled (all-MiniLM's pads every
    input to 128 tokens); either would falsify the counts.
    """
    if tokenizer.truncation is None and tokenizer.padding is None:
        return tokenizer
    plain = Tokenizer.from_str(tokenizer.to_str())
    plain.no_truncation()
    plain.no_padding()
    return plain


def _count_word_tokens(
    sections: Sequence[Section],
    spans: Sequence[Sequence[tuple[int, int]]],
    tokenizer: Tokenizer,
    max_tokens: int,
) -> tuple[dict[str, int], dict[str, list[tuple[int, int]]]]:
    """Token count of every distinct word, plus token offsets of over-long words.

    Words never share a token with their neighbours (BERT-style tokenizers
    split on whitespace first), so a passage's count is the sum of its words'.
    Counting each distinct word once, in one batch, keeps this a small
    fraction of the embedding time.
    """
    unique = list(
        {section.text[a:b] for section, section_spans in zip(sections, spans, strict=True) for a, b in section_spans}
    )
    encodings = tokenizer.encode_batch_fast(unique, add_special_tokens=False)
    counts = {word: len(encoding.ids) for word, encoding in zip(unique, encodings, strict=True)}
    # Only over-long words need offsets (to be cut), which the fast path skips.
    long_words = [word for word in unique if counts[word] > max_tokens]
    long_encodings = tokenizer.encode_batch(long_words, add_special_tokens=False) if long_words else []
    long_word_offsets = {word: encoding.offsets for word, encoding in zip(long_words, long_encodings, strict=True)}
    return counts, long_word_offsets


class _Words:
    """The words of one section: spans, token prefix sums and break quality."""

    def __init__(
        self,
        text: str,
        word_spans: Sequence[tuple[int, int]],
        counts: dict[str, int],
        long_word_offsets: dict[str, list[tuple[int, int]]],
    ):
        self.spans: list[tuple[int, int]] = []
        tokens: list[int] = []
        breaks: list[int] = []
        last = len(word_spans) - 1
        for index, (start, end) in enumerate(word_spans):
            word = text[start:end]
            if word in long_word_offsets:
                pieces = _split_long_word(start, end, long_word_offsets[word])
                self.spans += pieces
                tokens += [1] * len(pieces)
                breaks += [_NO_BREAK] * (len(pieces) - 1)
            else:
                self.spans.append((start, end))
                tokens.append(counts[word])
            breaks.append(_break_after(text, word, end, word_spans[index + 1][0] if index < last else None))
        self.prefix = list(itertools.accumulate(tokens, initial=0))
        # For each break quality, the sorted word indices a chunk may end at.
        self.ends_by_quality = {
            quality: [index + 1 for index, found in enumerate(breaks) if found >= quality]
            for quality in (_PARAGRAPH_BREAK, _SENTENCE_BREAK, _LINE_BREAK)
        }

    def __len__(self) -> int:
        return len(self.spans)


def _break_after(text: str, word: str, end: int, next_start: int | None) -> int:
    if next_start is None:
        return _PARAGRAPH_BREAK
    gap = text[end:next_start]
    if "\n\n" in gap:
        return _PARAGRAPH_BREAK
    if _SENTENCE_END.search(word):
        return _SENTENCE_BREAK
    if "\n" in gap:
        return _LINE_BREAK
    return _NO_BREAK


def _split_long_word(start: int, end: int, offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Cut a word of more than ``max_tokens`` tokens into one piece per token.

    Single-token pieces let the window packing fill chunks and overlaps
    exactly; each piece runs up to the next token so no character is lost.
    """
    starts = [start] + [start + offset[0] for offset in offsets[1:]]
    return list(zip(starts, [*starts[1:], end], strict=True))


def _windows(words: _Words, max_tokens: int, overlap_tokens: int) -> Iterator[tuple[int, int]]:
    """Yield (start, end) word ranges, one per chunk."""
    count = len(words)
    prefix = words.prefix
    sentence_ends = words.ends_by_quality[_SENTENCE_BREAK]
    start = previous_end = 0
    while start < count:
        # The furthest end that still fits in max_tokens (at least one word).
        limit = max(bisect.bisect_right(prefix, prefix[start] + max_tokens) - 1, start + 1)
        if limit >= count:
            yield start, count
            return
        end = limit
        # Prefer a clean break, but not at the price of a tiny chunk.
        min_end_tokens = prefix[start] + max_tokens // 2
        floor = max(start, previous_end)
        for quality in (_PARAGRAPH_BREAK, _SENTENCE_BREAK, _LINE_BREAK):
            ends = words.ends_by_quality[quality]
            index = bisect.bisect_right(ends, limit) - 1
            candidate = ends[index] if index >= 0 else 0
            if candidate > floor and prefix[candidate] >= min_end_tokens:
                end = candidate
                break
        yield start, end
        previous_end = end
        # Step back into the chunk for the overlap, to a sentence start if
        # one lies inside the overlap window.
        next_start = bisect.bisect_left(prefix, prefix[end] - overlap_tokens)
        sentence = bisect.bisect_left(sentence_ends, next_start)
        if sentence < len(sentence_ends) and sentence_ends[sentence] < end:
            next_start = sentence_ends[sentence]
        # The next chunk must still reach past this one's end.
        reach = bisect.bisect_left(prefix, prefix[end + 1] - max_tokens)
        start = min(max(next_start, reach, start + 1), end)
