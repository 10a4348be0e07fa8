"""The offline provider: it answers with quotes from the bot's best passages, never with invented text.

Without a language model it cannot judge relevance by reading, so it relies
on retrieval scores: passages below `CHAT_EXTRACTIVE_MIN_SCORE` (cosine
similarity to the question) are ignored, and when none is left it answers
with the bot's fallback message. From each passage it keeps the sentences
that share the most words with the question, verbatim.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

from conversations.providers.base import Completion, ProviderRequest, StreamPiece

MODEL_NAME = "extractive"
MAX_PASSAGES = 3
SENTENCES_PER_PASSAGE = 2
MAX_SENTENCE_CHARS = 400
INTRO = "Here is what I found in the knowledge base:"

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")
_DELTA = re.compile(r"\s*\S+")
_STOPWORDS = frozenset(
    "a an and are as at be but by can could do does for from had has have how i if in is it its me my of on or "
    "our so that the their them there these they this to us was we were what when where which who why will "
    "with would you your about any please tell".split()
)


def _terms(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    # Crude plural folding ("refunds" ~ "refund") is enough to rank sentences.
    return {word[:-1] if len(word) > 3 and word.endswith("s") else word for word in words if word not in _STOPWORDS}


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_BREAK.split(text) if part and part.strip()]


def _clip(sentence: str) -> str:
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    return sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " …"


def best_sentences(text: str, query_terms: set[str], *, limit: int = SENTENCES_PER_PASSAGE) -> list[str]:
    """The `limit` sentences of `text` sharing most words with the question, in their original order."""
    sentences = _sentences(text)
    scored = [(len(_terms(sentence) & query_terms), index) for index, sentence in enumerate(sentences)]
    if not scored:
        return []
    if max(score for score, _ in scored) == 0:
        chosen = list(range(min(limit, len(sentences))))
    else:
        ranked = sorted((item for item in scored if item[0] > 0), key=lambda item: (-item[0], item[1]))
        chosen = sorted(index for _, index in ranked[:limit])
    return [_clip(sentences[index]) for index in chosen]


def _source_line(passage) -> str:
    label = passage.title or "Untitled document"
    if passage.heading and passage.heading != passage.title:
        label = f"{label} › {passage.heading}"
    if passage.page:
        label = f"{label} (page {passage.page})"
    return f"— {label}"


def extractive_answer(query: str, passages: Sequence, fallback_message: str) -> str:
    """Quotes from `passages` (already cut to the relevant ones), or the fallback message."""
    query_terms = _terms(query)
    seen: set[str] = set()
    blocks = []
    for passage in passages:
        quoted = [s for s in best_sentences(passage.text, query_terms) if s not in seen]
        if not quoted:
            continue
        seen.update(quoted)
        blocks.append(f"> {' … '.join(quoted)}\n{_source_line(passage)}")
    if not blocks:
        return fallback_message.strip()
    return "\n\n".join([INTRO, *blocks])


class ExtractiveProvider:
    name = "extractive"

    def __init__(self, *, min_score: float, max_passages: int = MAX_PASSAGES):
        self.min_score = min_score
        self.max_passages = max_passages

    def model_for(self, bot) -> str:
        return MODEL_NAME

    def usable_passages(self, passages: Sequence) -> list:
        return [passage for passage in passages if passage.score >= self.min_score][: self.max_passages]

    def complete(self, request: ProviderRequest) -> Completion:
        content = extractive_answer(request.query, request.passages, request.fallback_message)
        return Completion(content=content, model=MODEL_NAME, usage=None)

    async def astream(self, request: ProviderRequest) -> AsyncIterator[StreamPiece]:
        content = extractive_answer(request.query, request.passages, request.fallback_message)
        for word in _DELTA.findall(content):
            yield StreamPiece(delta=word)
        yield StreamPiece(model=MODEL_NAME, finish_reason="stop")
