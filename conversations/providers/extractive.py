"""The offline provider: it answers with the sentence(s) of the bot's knowledge that answer the question, verbatim.

Without a language model it cannot write an answer, so it picks one:

1. the passages the search found (best first, already cut at the bot's
   answer threshold, see `conversations.answerability`) are split into
   sentences, hard-wrapped lines joined first (`knowledge.sentences`);
2. each sentence is scored against the question, lexically (the question's
   words it contains, weighted by how rare they are among the candidate
   sentences; a word of the passage's heading counts little) and semantically
   (cosine similarity of its embedding to the question's, with the configured
   embedding model; vectors cached by text), plus a little for the passage's
   own search score and for opening its section (FAQ and manual sections lead
   with their answer);
3. the best sentence is quoted, from its passage: with the sentence before
   it in its paragraph (often its subject or condition), at most
   `MAX_SENTENCES` of that paragraph in all for how well they score, then
   the paragraphs and steps that follow it in the passage (a how-to answer
   goes on with its steps), up to `ANSWER_WORDS` words; then the citation
   (document › section, page). A second passage is quoted the same way, with
   its own citation, only when its search score is at least
   `SECOND_PASSAGE_SHARE` of the first's and its best sentence shows evidence
   of its own: the answer spans two sections. Sentences of other, less
   relevant sections or documents are never quoted;
4. when even the best sentence shows no evidence (too little similarity and
   no shared rare word), the answer is the bot's fallback message.

A follow-up question ("and on weekends?") is scored with the earlier question
it continues (`context`): half its similarity to the question alone and half
to both, the earlier question's words counting half; the evidence must come
from the question itself (`ScoredSentence.has_evidence`). Its quote goes on
to the end of the best sentence's paragraph (see `_quote_from`).
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np

from conversations.providers.base import Completion, Grounding, ProviderRequest, StreamPiece
from knowledge.sentences import content_words as terms
from knowledge.sentences import split_sentences, unwrap_lines

MODEL_NAME = "extractive"
MAX_PASSAGES = 3
MAX_SENTENCE_CHARS = 400

# Sentence scoring (chosen on the demo FAQ and the quality benchmark's tuning part).
LEXICAL_WEIGHT = 0.35
PASSAGE_WEIGHT = 0.4
FIRST_SENTENCE_BONUS = 0.04
HEADING_TERM_SHARE = 0.3  # what a question word found in the passage's heading counts for in its sentences
MAX_SENTENCES = 2  # sentences of the best one's paragraph quoted for how well they score
EXTRA_SENTENCE_MARGIN = 0.1  # ...when this close to the best
PRECEDING_SENTENCES = 1  # sentences of the paragraph right before the best one, quoted as its context
SECOND_PASSAGE_SHARE = 0.4  # a second passage is quoted when its search score is at least this share of the first's
ANSWER_WORDS = 150  # the paragraphs after the best sentence's are quoted up to this many words in all
# Evidence a sentence must show to be quoted at all.
MIN_SEMANTIC = 0.40
MIN_LEXICAL = 0.5
MIN_TYPED_SEMANTIC = 0.25  # when the sentence holds the kind of answer asked for (see ANSWER_TYPES)
MIN_FOLLOW_UP_SEMANTIC = 0.40  # for a follow-up: with the question it continues...
MIN_FOLLOW_UP_OWN_SEMANTIC = 0.15  # ...and alone

_DELTA = re.compile(r"\s*\S+")

_PHONE = re.compile(r"\+?\d[\d ().-]{5,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.\w[\w.]*")
_AMOUNT = re.compile(r"[$€£]\s?\d|\d\s?(?:usd|eur|gbp|dollars?|euros?|pounds?)\b", re.IGNORECASE)
#: A question asking for a kind of answer (its words), and what such an answer looks like in a sentence:
#: "What's your phone number?" is answered by the sentence holding one, whatever its words.
ANSWER_TYPES = (
    (re.compile(r"\b(?:phone|telephone|call|ring|contact|reach)\b", re.IGNORECASE), (_PHONE, _EMAIL)),
    (re.compile(r"\b(?:e-?mail|contact|reach|write)\b", re.IGNORECASE), (_EMAIL,)),
    (re.compile(r"\b(?:price|prices|cost|costs|much|fee|fees|charge|pay)\b", re.IGNORECASE), (_AMOUNT,)),
)


def answer_type_found(question: str, sentence: str) -> bool:
    """Whether `question` asks for a kind of answer (a phone number, an email, an amount) that `sentence` holds."""
    return any(
        asks.search(question) and any(pattern.search(sentence) for pattern in patterns)
        for asks, patterns in ANSWER_TYPES
    )


@dataclass(frozen=True)
class ScoredSentence:
    text: str
    passage: int  # index of its passage
    position: int  # index of the sentence in its passage
    lexical: float  # 0..1: share of the question's word weight it contains
    semantic: float  # cosine similarity to the question (for a follow-up, half of it to the one it continues)
    score: float
    own_lexical: float  # the same, for the question's own words and the question alone (= the above
    own_semantic: float  # for a standalone question)
    answer_type: bool = False  # the question asks for a kind of answer (a phone number…) the sentence holds

    @property
    def has_evidence(self) -> bool:
        # Evidence must come from the question itself: the topic before it cannot answer a new question alone.
        # A follow-up ("can I choose my own hours for it?") may say little by itself: it is evidence enough
        # when it still points the same way and the two questions together are clearly answered.
        if self.own_semantic >= MIN_SEMANTIC or self.own_lexical >= MIN_LEXICAL:
            return True
        if self.answer_type and self.own_semantic >= MIN_TYPED_SEMANTIC:
            return True
        return self.semantic >= MIN_FOLLOW_UP_SEMANTIC and self.own_semantic >= MIN_FOLLOW_UP_OWN_SEMANTIC


class _VectorCache:
    """Sentence embeddings by text (an LRU): the same passages come back for the same questions."""

    def __init__(self, size: int = 8192):
        self.size = size
        self._vectors: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, embedder, texts: list[str]) -> np.ndarray:
        key_of = id(embedder)
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                vector = self._vectors.get((key_of, text))
                if vector is not None:
                    self._vectors.move_to_end((key_of, text))
                    found[text] = vector
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        if missing:
            vectors = embedder.embed(missing)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    found[text] = vector
                    self._vectors[(key_of, text)] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.stack([found[text] for text in texts])


_cache = _VectorCache()


def _default_embedder():
    from knowledge.conf import configured_embedder

    return configured_embedder()


def score_sentences(
    query: str,
    passages: Sequence,
    *,
    context: str = "",
    query_vector=None,
    embedder=None,
) -> list[ScoredSentence]:
    """Every sentence of `passages`, scored against the question (see the module's docstring), best first."""
    candidates: list[tuple[int, int, str]] = []
    for p_index, passage in enumerate(passages):
        for s_index, sentence in enumerate(split_sentences(passage.text)):
            candidates.append((p_index, s_index, sentence))
    if not candidates:
        return []
    own, earlier = terms(query), terms(context) - terms(query)
    sentence_terms = [terms(sentence) for _, _, sentence in candidates]
    # Rarer words among the candidates tell sentences apart: weigh by IDF over them (always > 0).
    count = len(candidates)
    weights: dict[str, float] = {}
    for term in own | earlier:
        frequency = sum(1 for found in sentence_terms if term in found)
        weight = math.log(1 + (count + 1) / (frequency + 0.5))
        weights[term] = weight * (1.0 if term in own else 0.5)
    total = sum(weights.values()) or 1.0
    own_total = sum(weights[term] for term in own) or 1.0

    embedder = embedder or _default_embedder()
    if query_vector is None:
        query_vector = embedder.embed([query])[0]
    vectors = _cache.embed(embedder, [sentence for _, _, sentence in candidates])
    similarities = own_similarities = vectors @ np.asarray(query_vector, dtype=vectors.dtype)
    if context:
        # Half the question alone, half the question with the one it continues: the earlier topic helps
        # ("and the basic one?") but cannot answer a new, unrelated question by itself.
        combined = embedder.embed([f"{context} {query}"])[0]
        similarities = (similarities + vectors @ np.asarray(combined, dtype=vectors.dtype)) / 2

    # A word of the passage's heading names its topic, not the answer: every sentence under it is about it.
    heading_terms = [terms(passage.heading or "") for passage in passages]
    scored = []
    rows = zip(candidates, sentence_terms, similarities, own_similarities, strict=True)
    for (p_index, s_index, sentence), found, similarity, own_similarity in rows:
        topic = heading_terms[p_index]
        matched = {term: weight * (HEADING_TERM_SHARE if term in topic else 1.0) for term, weight in weights.items()
                   if term in found}  # fmt: skip
        lexical = sum(matched.values()) / total
        own_lexical = sum(weight for term, weight in matched.items() if term in own) / own_total
        semantic = float(similarity)
        score = (
            semantic
            + LEXICAL_WEIGHT * lexical
            + PASSAGE_WEIGHT * float(passages[p_index].score)
            + (FIRST_SENTENCE_BONUS if s_index == 0 else 0.0)
        )
        typed = answer_type_found(query, sentence)
        scored.append(
            ScoredSentence(
                sentence, p_index, s_index, lexical, semantic, score, own_lexical, float(own_similarity), typed
            )
        )
    scored.sort(key=lambda item: (-item.score, item.passage, item.position))
    return scored


def _clip(sentence: str) -> str:
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    return sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " …"


def source_line(passage) -> str:
    label = passage.title or "Untitled document"
    if passage.heading and passage.heading != passage.title:
        label = f"{label} › {passage.heading}"
    if passage.page:
        label = f"{label} (page {passage.page})"
    return f"— {label}"


def extract(
    query: str, passages: Sequence, *, context: str = "", query_vector=None, embedder=None
) -> list[tuple[object, list[str]]] | None:
    """The quotes that answer: (passage, its sentences quoted, in their order), best first; None: no evidence.

    The best sentence's passage is quoted (see `_quote_from`); a second passage is quoted too when it is
    nearly as relevant (its search score at least `SECOND_PASSAGE_SHARE` of the first's) and its own best
    sentence shows evidence: answers that span two sections ("How do I add a printer?" then its settings)
    are common in manuals, while an unrelated section of an FAQ scores far below the answering one.
    """
    scored = score_sentences(query, passages, context=context, query_vector=query_vector, embedder=embedder)
    if not scored or not scored[0].has_evidence:
        return None
    picks = [scored[0]]
    first_score = float(passages[scored[0].passage].score)
    for other in scored[1:]:
        if other.passage != scored[0].passage and other.has_evidence:
            if float(passages[other.passage].score) >= SECOND_PASSAGE_SHARE * first_score:
                picks.append(other)
            break
    follow_up = bool(context)
    return [
        (passages[best.passage], _quote_from(passages[best.passage], best, scored, follow_up=follow_up))
        for best in picks
    ]


def _quote_from(passage, best: ScoredSentence, scored: list[ScoredSentence], *, follow_up: bool = False) -> list[str]:
    """The sentences of `passage` quoted around its best sentence `best`: the sentence before it in its paragraph
    (`PRECEDING_SENTENCES`), the paragraph's sentences scoring within `EXTRA_SENTENCE_MARGIN` of it (at most
    `MAX_SENTENCES` in all), then the paragraphs and list items that follow it in the passage (a how-to answer
    goes on with its steps), up to `ANSWER_WORDS` words. An FAQ paragraph of independent facts is thus
    answered with its one or two facts.

    For a `follow_up` the rest of the best sentence's paragraph is quoted too: a follow-up says little by
    itself ("And how do I undo that?"), so its best sentence is mostly the topic's, and the answer is the
    sentence after it ("...you can undo the rename. To revert the action, click ... Undo Rename")."""
    units = [split_sentences(unit) for unit in unwrap_lines(passage.text)]
    unit_of, first_of = [], []
    for index, unit in enumerate(units):
        first_of.append(len(unit_of))
        unit_of.extend([index] * len(unit))
    owner = unit_of[best.position]
    chosen = {best.position}
    # The sentence before the best one is often its subject or condition ("If a printer is shared, ...").
    chosen.update(range(max(first_of[owner], best.position - PRECEDING_SENTENCES), best.position))
    for other in scored[1:]:
        if len(chosen) >= MAX_SENTENCES or other.score < best.score - EXTRA_SENTENCE_MARGIN:
            break
        if other.passage == best.passage and unit_of[other.position] == owner and other.has_evidence:
            chosen.add(other.position)
    if follow_up:
        chosen.update(range(best.position, first_of[owner] + len(units[owner])))
    sentences = [sentence for unit in units for sentence in unit]
    words = sum(len(sentences[index].split()) for index in chosen)
    for index in range(owner + 1, len(units)):
        words += sum(len(sentence.split()) for sentence in units[index])
        if words > ANSWER_WORDS:
            break
        chosen.update(range(first_of[index], first_of[index] + len(units[index])))
    return [_clip(sentences[index]) for index in sorted(chosen)]


def quote(quotes: list[tuple[object, list[str]]]) -> str:
    """The answer: each passage's quoted sentences, verbatim, then where they come from."""
    return "\n\n".join(f"> {' '.join(sentences)}\n{source_line(passage)}" for passage, sentences in quotes)


class ExtractiveProvider:
    name = "extractive"
    cites_passages = False  # its answer names its one source below the quote

    def __init__(self, *, max_passages: int = MAX_PASSAGES, embedder=None):
        self.max_passages = max_passages
        self._embedder = embedder

    def model_for(self, bot) -> str:
        return MODEL_NAME

    def ground(self, *, query: str, passages: Sequence, context: str = "", query_vector=None) -> Grounding:
        """Decide the answer now: the quoted passage is the only source; no evidence → no source, the fallback."""
        candidates = list(passages)[: self.max_passages]
        if not candidates:
            return Grounding(passages=[], answer=None)
        quotes = extract(query, candidates, context=context, query_vector=query_vector, embedder=self._embedder)
        if quotes is None:
            return Grounding(passages=[], answer=None)
        return Grounding(passages=[passage for passage, _ in quotes], answer=quote(quotes))

    def _content(self, request: ProviderRequest) -> str:
        return request.grounded_answer or request.fallback_message.strip()

    def complete(self, request: ProviderRequest) -> Completion:
        return Completion(content=self._content(request), model=MODEL_NAME, usage=None)

    async def astream(self, request: ProviderRequest) -> AsyncIterator[StreamPiece]:
        for word in _DELTA.findall(self._content(request)):
            yield StreamPiece(delta=word)
        yield StreamPiece(model=MODEL_NAME, finish_reason="stop")
