"""Citation markers: the model cites passages as [1], [2]…; the answer's `sources` are the cited ones.

The prompt numbers the passages it gives the model from 1 (`conversations.prompt`).
The answer keeps only the passages it cites, in the order it first cites them,
and its markers are renumbered to match, so that "[k]" in the answer is
`sources[k-1]` — in a plain answer, in a stream (deltas are rewritten as they
pass, holding back at most a partial marker such as "[1"), and in the stored
message. Numbers that match no passage are left as written. An answer that
cites nothing keeps every passage it was given as its sources (the model
read them all); the fallback message has none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# The end of a delta that may be the start of a marker, to hold back until the next delta.
_PARTIAL_MARKER = re.compile(r"\[[\d,\s]{0,12}$")


class CitationRenumberer:
    """Rewrites an answer's markers, in one piece or delta by delta (`feed`, then `flush`)."""

    def __init__(self, passage_count: int):
        self.passage_count = passage_count
        self.cited: list[int] = []  # the passages' numbers in the prompt (1-based), in first-citation order
        self._pending = ""

    def feed(self, delta: str) -> str:
        text = self._pending + delta
        partial = _PARTIAL_MARKER.search(text)
        if partial:
            self._pending, text = text[partial.start() :], text[: partial.start()]
        else:
            self._pending = ""
        return _MARKER.sub(self._renumber, text)

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return _MARKER.sub(self._renumber, text)

    def rewrite(self, content: str) -> str:
        return self.feed(content) + self.flush()

    def _renumber(self, match: re.Match) -> str:
        numbers = [int(part) for part in match.group(1).split(",")]
        if not all(1 <= number <= self.passage_count for number in numbers):
            return match.group(0)
        renumbered = []
        for number in numbers:
            if number not in self.cited:
                self.cited.append(number)
            renumbered.append(str(self.cited.index(number) + 1))
        return "[" + ", ".join(renumbered) + "]"

    def cited_passages(self, passages: Sequence) -> list:
        """The passages the answer cites, in citation order (all of them when it cites none)."""
        if not self.cited:
            return list(passages)
        return [passages[number - 1] for number in self.cited]
