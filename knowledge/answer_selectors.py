"""Reads of curated answers, and the match that decides whether a customer's question gets one.

The match uses retrieval's machinery on the bot's curated wordings (each
answer's question and variants, `CuratedPhrase`): the same embedding of the
question (cosine similarity against each wording, exact: a bot has few) and
the same full-text configuration (does the question contain every lexeme of
the wording). A wording matches when its similarity reaches
`CURATED_ANSWER_MIN_SIMILARITY`, or `CURATED_ANSWER_LEXICAL_MIN_SIMILARITY`
when all its lexemes are in the question; the most similar matching wording
wins. The thresholds are calibrated on `knowledge/calibration/curated_pairs.json`
(same-intent and near-miss question pairs) for no false match there.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from knowledge.models import FULLTEXT_CONFIG, CuratedAnswer, CuratedPhrase
from knowledge.selectors import QueryVector, _query_embedding, vector_literal


@dataclass(frozen=True)
class CuratedMatch:
    answer: CuratedAnswer
    wording: str  # the question or variant that matched
    similarity: float  # cosine similarity of the question to it
    lexical: bool  # whether every lexeme of the wording is in the question


def curated_answer_list(*, tenant, bot=None):
    """The tenant's curated answers (newest first once paginated), optionally one bot's."""
    answers = CuratedAnswer.objects.filter(tenant=tenant).select_related("bot", "source_message")
    return answers.filter(bot=bot) if bot is not None else answers


def curated_answer_candidates(*, bot, question: str, query_vector: QueryVector | None = None, limit: int = 5):
    """The bot's wordings nearest to `question`: (answer id, wording, similarity, lexical), most similar first."""
    vector = _query_embedding(question, query_vector, ensemble=False).vector
    table = CuratedPhrase._meta.db_table
    sql = f"""
        SELECT answer_id, text, 1 - (embedding <=> %(vector)s::vector) AS similarity,
               cardinality(tsvector_to_array(search_vector)) > 0
               AND tsvector_to_array(search_vector)
                   <@ tsvector_to_array(to_tsvector(%(config)s::regconfig, %(question)s)) AS lexical
        FROM {table}
        WHERE bot_id = %(bot)s
        ORDER BY embedding <=> %(vector)s::vector
        LIMIT %(limit)s
    """
    params = {
        "vector": vector_literal(vector),
        "config": FULLTEXT_CONFIG,
        "question": question,
        "bot": bot.pk,
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def curated_answer_match(*, bot, question: str, query_vector: QueryVector | None = None) -> CuratedMatch | None:
    """The curated answer `question` should get verbatim, or None (then retrieval answers as usual)."""
    if not CuratedPhrase.objects.filter(bot=bot).exists():
        return None
    for answer_id, wording, similarity, lexical in curated_answer_candidates(
        bot=bot, question=question, query_vector=query_vector
    ):
        threshold = (
            settings.CURATED_ANSWER_LEXICAL_MIN_SIMILARITY if lexical else settings.CURATED_ANSWER_MIN_SIMILARITY
        )
        if similarity >= threshold:
            answer = CuratedAnswer.objects.select_related("bot").get(pk=answer_id)
            return CuratedMatch(answer=answer, wording=wording, similarity=float(similarity), lexical=lexical)
    return None
