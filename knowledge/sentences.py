"""Text into sentences: hard-wrapped lines joined back into their paragraph, then cut at sentence ends.

A PDF (or a plain-text file, or a Markdown source) breaks its lines where the
page or the editor ran out of width, not where a sentence ends. Treating each
line as a unit quotes half sentences and mixes facts ("battery life on turbo"
answered with the next line's launch date), so lines are joined first:

* a blank line always ends a paragraph;
* a line starting with a list marker ("-", "*", "•", "1.", "2)") or a heading
  mark ("#") starts a new unit, and a line ending with ":" ends one;
* otherwise a line break is a wrap, and joined with a space, when the next line
  starts in lower case (or with a digit or a continuing punctuation mark), or
  when the line is long for its paragraph (at least `WRAPPED_LINE_SHARE` of
  its longest line) and does not end a sentence. Short lines that do not end
  a sentence and are followed by a capital (titles, table rows, an address)
  stay units of their own.

Sentences end at ".", "!", "?" or "…" (with closing quotes or brackets) followed
by a space and a capital, a digit or an opening quote — not after a known
abbreviation ("e.g.", "Dr.", "No.") or a single initial ("J. Smith").
"""

from __future__ import annotations

import itertools
import re

WRAPPED_LINE_SHARE = 0.6

_LIST_ITEM = re.compile(r"^(?:[-*•▪◦‣+]\s|\d{1,3}[.)]\s|[a-z][.)]\s|#{1,6}\s|>\s?)")
_SENTENCE_END_CHARS = ".!?…。！？"
_CLOSERS = "\"'”’)]»"
# A sentence end: terminal punctuation, optional closers, whitespace, then what may start a sentence.
_BOUNDARY = re.compile(r"([.!?…。！？][\"'”’)\]»]*)(\s+)(?=[\"'“‘(\[«]?[A-Z0-9À-ÖØ-Þ])")
_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf approx dept fig figs no nos nr mr mrs ms dr prof st sr jr inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun p pp vol ch sec".split()
)
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")


def unwrap_lines(text: str) -> list[str]:
    """The units of `text` (paragraphs, list items, lone short lines) with hard-wrapped lines joined."""
    units: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        lines = [line.strip() for line in paragraph.split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            continue
        widest = max(len(line) for line in lines)
        current = lines[0]
        for previous, line in itertools.pairwise(lines):
            if _is_wrap(previous, line, widest):
                current = (
                    current + line if previous.endswith("-") and previous[-2:-1].isalpha() else f"{current} {line}"
                )
            else:
                units.append(current)
                current = line
        units.append(current)
    return units


def _is_wrap(previous: str, line: str, widest: int) -> bool:
    if _LIST_ITEM.match(line) or previous.endswith(":") or previous.startswith("#"):
        return False
    first = line[0]
    if first.islower() or first in ",;:)]%" or (first.isdigit() and not previous.endswith(tuple(_SENTENCE_END_CHARS))):
        return True
    ends_sentence = previous.rstrip(_CLOSERS).endswith(tuple(_SENTENCE_END_CHARS))
    if ends_sentence:
        # Joining is harmless (the sentence split cuts there again) and keeps a paragraph one unit.
        return True
    return len(previous) >= WRAPPED_LINE_SHARE * widest and len(previous) >= 40


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, in order, each on one line (hard wraps joined, spaces collapsed)."""
    sentences: list[str] = []
    for unit in unwrap_lines(text):
        unit = " ".join(unit.split())
        start = 0
        for match in _BOUNDARY.finditer(unit):
            end = match.end(1)
            if _is_abbreviation(unit[start:end]):
                continue
            piece = unit[start:end].strip()
            if piece:
                sentences.append(piece)
            start = match.end(2)
        rest = unit[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


def _is_abbreviation(text: str) -> bool:
    """Whether `text` ends in an abbreviation's full stop rather than a sentence's."""
    if not text.endswith("."):
        return False
    word = text[:-1].rsplit(None, 1)[-1] if text[:-1].strip() else ""
    word = word.lstrip("\"'“‘([«")
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "J. Smith"
    if "." in word and all(len(part) == 1 for part in word.split(".")):
        return True  # "U.S.", "a.m."
    return word.lower() in _ABBREVIATIONS


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS = frozenset(
    "a an and are as at be but by can could do does did for from had has have how i if in is it its it's me my of "
    "on or our so that the their them there these they this to us was we were what when where which who why will "
    "with would you your you're about any please tell get got i'm im am been being just some much many also "
    "there's what's whats should shall may might into out up down over than then too very not no".split()
)


def _stem(word: str) -> str:
    # Crude suffix folding ("refunds" ~ "refund", "shipping" ~ "ship") is enough to match a question's words.
    for suffix, keep in (("'s", 1), ("ies", 2), ("ing", 3), ("ed", 3), ("s", 3)):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= keep:
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiousl":
        word = word[:-1]  # "shipp" -> "ship"
    return word


def content_words(text: str) -> set[str]:
    """The content words of `text` (no stop words), crudely stemmed: what a question and a sentence share."""
    return {_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOPWORDS}


def sentence_units(text: str) -> list[list[str]]:
    """The units of `text` (see `unwrap_lines`), each as its sentences."""
    return [split_sentences(unit) for unit in unwrap_lines(text)]


_STEP_VERBS = frozenset(
    "open click press select switch choose type go enter tap drag use set turn find navigate right-click "
    "double-click check uncheck toggle scroll save insert plug connect remove restart run install follow change "
    "pick add delete edit start close log sign visit call email contact send fill make move copy paste wait "
    "adjust enable disable".split()
)


def is_step(unit: str) -> bool:
    """Whether `unit` reads like a step of a procedure: a list item, or a sentence opening with a verb of action."""
    if _LIST_ITEM.match(unit):
        return True
    first = unit.split(None, 1)[0].lower().strip(",.:;") if unit.strip() else ""
    return first in _STEP_VERBS


def unwrap_text(text: str) -> str:
    """`text` with hard-wrapped lines joined (see `unwrap_lines`): one line per unit, blank lines between
    paragraphs kept. What a PDF page or a wrapped text file becomes before it is chunked."""
    return "\n\n".join("\n".join(unwrap_lines(paragraph)) for paragraph in _PARAGRAPH_BREAK.split(text)).strip()
