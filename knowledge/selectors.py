"""Knowledge base reads: documents, and hybrid retrieval for the chat engine and hit testing.

Retrieval (`search`) runs two rankers over one bot's chunks (the full-text one in its own statement while
the query is embedded, the vector one in the statement that then scores every candidate):

* vector, cosine distance: a bot holding at most `KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS`
  chunks (most bots) is scanned exactly through the index on `bot_id`, so its
  ranking is exact whatever the rest of the index holds; a larger one goes
  through the pgvector HNSW index, with iterative index scans
  (`hnsw.iterative_scan = relaxed_order`) so the bot filter still yields
  enough neighbours, the approximate candidates re-ordered by exact distance;
* full text: the chunks' generated `tsvector` (GIN), weighted by each query
  lexeme's IDF in the bot (`LexemeStat`), a hit having to match a share of
  the query's weight (see `lexical_plan`);

then scores every candidate of either ranker with a calibrated relevance model
(`relevance`): the estimated probability, 0..1, that the passage answers the
query, from its similarity, how far that lies below the best candidate's,
and the share of the query's IDF weight it contains. The similarity is the
ensemble's: the mean of the cosine similarities of the two local models
(all-MiniLM-L6-v2, which the vector ranker searches, and bge-small-en, stored
unindexed in `embedding_aux`), or the first model's alone for a chunk without
the second vector (embedded before the ensemble, or by an embedding API). Passages are ordered by
that `score`, the one they show, and the bot's `retrieval.min_score` cuts on it.
The model is a logistic regression fitted on the tuning part of
bench/quality.py (`python bench/quality.py --fit`); on the held-out part a
score of 0.3 means that about 30 % of such passages answer the question.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection
from numpy import ndarray

from bothero.errors import NotFoundError, ValidationError
from knowledge import sql
from knowledge.conf import auxiliary_embedder, configured_embedder
from knowledge.embeddings import embed_question_start
from knowledge.models import Document


@dataclass(frozen=True)
class QueryEmbedding:
    """A question embedded by each model of the ensemble (`query_embeddings`)."""

    vector: ndarray  # the configured model's (all-MiniLM-L6-v2 locally): what the vector ranker searches
    aux: ndarray | None = None  # bge-small-en's, with its query instruction; None without the ensemble


# A query's embedding (`QueryEmbedding`, or the first model's vector alone), or a callable giving it
# (e.g. `Future.result`).
QueryVector = QueryEmbedding | ndarray | Callable[[], QueryEmbedding | ndarray]

RRF_K = 60
SNIPPET_CHARS = 300
# "hybrid" is the product (both rankers, ordered by calibrated score); the others are for
# evaluation: "rrf" both rankers fused by reciprocal rank (the order before the relevance
# model), "vector" and "fulltext" one ranker alone. All show the calibrated score; the
# evaluation modes keep their ranker's order.
MODES = ("hybrid", "rrf", "vector", "fulltext")

# The relevance model (see the module's docstring): P(passage answers the query) =
# sigmoid(INTERCEPT + SIMILARITY·similarity + GAP·(similarity − best candidate's similarity)
# + TEXT·share of the query's IDF weight the passage contains). Fitted by
# `python bench/quality.py --fit` on the tuning questions (verbatim, re-worded and
# unanswerable), every candidate of `search` labelled by whether it holds the answer.
RELEVANCE_INTERCEPT = -5.074
RELEVANCE_SIMILARITY = 7.610
RELEVANCE_GAP = 33.512
RELEVANCE_TEXT = 0.492
# The ensemble's similarity: (1 − AUX_WEIGHT)·cos(all-MiniLM-L6-v2) + AUX_WEIGHT·cos(bge-small-en),
# chosen on the tuning part of bench/quality.py (docs/quality.md, "Levers tried").
AUX_WEIGHT = 0.5


@dataclass(frozen=True)
class Passage:
    chunk_id: str  # public id of the chunk, e.g. "chk_..."
    document_id: str  # "doc_..."
    title: str  # the document's title
    text: str  # the full chunk text (what a prompt should include)
    snippet: str  # at most ~300 characters of the chunk, for display
    score: float  # calibrated relevance, 0..1: estimated probability that it answers the query (results are ordered by it; min_score cuts on it)
    position: int  # chunk position in its document
    heading: str | None  # section heading kept as context
    page: int | None  # page number (PDF) or None
    similarity: float = 0.0  # the ensemble's cosine similarity of the chunk to the query (one of the score's inputs)
    text_match: float = 0.0  # share of the query's IDF weight the chunk contains, 0..1 (another input)


def relevance(*, similarity: float, best_similarity: float, text_match: float) -> float:
    """The calibrated relevance of a passage (see `RELEVANCE_INTERCEPT`): a probability, 0..1."""
    logit = (
        RELEVANCE_INTERCEPT
        + RELEVANCE_SIMILARITY * similarity
        + RELEVANCE_GAP * (similarity - best_similarity)
        + RELEVANCE_TEXT * text_match
    )
    return 1.0 / (1.0 + math.exp(-logit))


# --------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------


def document_list(*, tenant, bot=None, status: str | None = None):
    """The tenant's documents, optionally one bot's and/or in one status."""
    documents = Document.objects.filter(tenant=tenant).select_related("bot")
    if bot is not None:
        documents = documents.filter(bot=bot)
    if status is not None:
        documents = documents.filter(status=status)
    return documents


# --------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------

# A full-text hit must match at least this share of the query's IDF weight: a chunk
# sharing only a common word ("widget" in a widget shop) is not a hit.
MIN_TEXT_MATCH = 0.3
# Chunk matches the candidate lexemes may add up to (see `lexical_plan`), and the rows
# scored at most when even the rarest query word is that common.
TEXT_CANDIDATE_BUDGET = 500


@dataclass(frozen=True)
class LexicalPlan:
    """Full-text query for one search: candidate terms, per-term IDF weights and the score to reach."""

    candidate_terms: list[str]
    weights: dict[str, float]
    min_score: float


def idf(document_frequency: int, total: int) -> float:
    """BM25's inverse document frequency (always positive)."""
    return math.log(1 + (total - document_frequency + 0.5) / (document_frequency + 0.5))


def lexical_plan(frequencies: dict[str, int], total: int) -> LexicalPlan | None:
    """Weigh the query's lexemes by IDF and pick the ones a hit must contain at least one of.

    Postgres ranks full-text matches without IDF, so an OR of the query's
    words lets in any chunk sharing a common word. Instead each lexeme the bot
    knows gets its BM25 IDF weight, and a hit must match `MIN_TEXT_MATCH` of the
    query's total weight (words the bot has never seen match nothing and count
    for nothing). Candidates are found through the rarest lexemes only: as in
    MaxScore, once the remaining, commoner lexemes together cannot reach the
    bar, every hit must contain one of the rare ones. To bound the work on
    large bots, candidate lexemes are also added only while their chunk counts
    sum to at most `TEXT_CANDIDATE_BUDGET` (the rarest one is always used):
    a chunk that matches only common words may then be missed.
    """
    known = sorted((lexeme for lexeme, df in frequencies.items() if df > 0), key=lambda lexeme: frequencies[lexeme])
    if not known:
        return None
    weights = {lexeme: idf(frequencies[lexeme], total) for lexeme in known}
    min_score = MIN_TEXT_MATCH * sum(weights.values())
    candidates, rest, rows = [], sum(weights.values()), 0
    for lexeme in known:
        if candidates and rows + frequencies[lexeme] > TEXT_CANDIDATE_BUDGET:
            break
        candidates.append(lexeme)
        rows += frequencies[lexeme]
        rest -= weights[lexeme]
        if rest < min_score:
            break
    return LexicalPlan(candidate_terms=candidates, weights=weights, min_score=min_score)


def _tsquery_term(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def search(
    *,
    tenant,
    bot,
    query: str,
    top_k: int | None = None,
    min_score: float | None = None,
    query_vector: QueryVector | None = None,
) -> list[Passage]:
    """Hybrid retrieval restricted to `bot` (and its tenant): Postgres full-text + vector cosine (exact for a bot
    up to KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS chunks, pgvector HNSW above); every candidate of either
    ranker gets its calibrated `score` (`relevance`), passages are ordered by it and cut at min_score.
    top_k defaults to bot.retrieval["top_k"], min_score to bot.retrieval["min_score"]. Only chunks of
    documents with status "ready". Embeds the query (local ONNX model by default) unless `query_vector`
    gives its embedding: the vector, or a callable returning it (such as the `result` of a Future
    computing it elsewhere), called only once the full-text ranker has run, so the two overlap (without it
    the query is embedded on worker threads meanwhile)."""
    return search_ranked(
        tenant=tenant, bot=bot, query=query, top_k=top_k, min_score=min_score, mode="hybrid", query_vector=query_vector
    )


def search_ranked(
    *,
    tenant,
    bot,
    query: str,
    top_k: int | None = None,
    min_score: float | None = None,
    mode: str = "hybrid",
    query_vector: QueryVector | None = None,
) -> list[Passage]:
    """`search` with a choice of ranker: "hybrid" (the product), or "rrf", "vector", "fulltext" (for evaluation)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if bot.tenant_id != tenant.pk:
        raise NotFoundError(f"No such bot: {bot.public_id}.", code="bot_not_found", param="bot_id")
    retrieval = bot.retrieval or {}
    top_k = int(top_k if top_k is not None else retrieval.get("top_k", 5))
    min_score = float(min_score if min_score is not None else retrieval.get("min_score", 0.0))
    if top_k < 1:
        raise ValidationError("top_k must be at least 1.", code="invalid_top_k", param="top_k")
    passages = search_candidates(tenant=tenant, bot=bot, query=query, top_k=top_k, mode=mode, query_vector=query_vector)
    return [passage for passage in passages if passage.score >= min_score][:top_k]


def search_candidates(
    *, tenant, bot, query: str, top_k: int, mode: str = "hybrid", query_vector: QueryVector | None = None
) -> list[Passage]:
    """Every candidate of `search_ranked` (each ranker's best max(KNOWLEDGE_SEARCH_CANDIDATES, top_k)),
    scored and in its order, before the min_score and top_k cuts (fitting the relevance model reads them)."""
    query = query.strip()
    if not query:
        return []
    params = {
        "bot_id": bot.pk,
        "tenant_id": tenant.pk,
        "candidates": max(settings.KNOWLEDGE_SEARCH_CANDIDATES, top_k),
    }
    if query_vector is None:
        # The models embed the query on worker threads while the full-text ranker runs in PostgreSQL: the
        # two overlap instead of adding up.
        query_vector = query_embeddings_start(query)
    # Read-only statements, in autocommit unless the caller is in a transaction: no BEGIN/COMMIT
    # round trips, and no transaction of ours held open while the query is embedded (the slow part).
    with connection.cursor() as cursor:
        rankings = []
        bot_chunks = None
        text_score, text_total = "0", 0.0
        if mode in ("hybrid", "rrf", "fulltext"):
            text_hits, bot_chunks, text_score, text_total, own_indexes = _text_hits_sql(
                cursor, bot=bot, query=query, params=params
            )
            if text_hits:
                # Its own statement, run before the query's vector is needed; its hits join the final
                # statement as two arrays.
                cursor.execute(text_hits, params)
                hits = cursor.fetchall()
                if hits:
                    params["text_hit_ids"] = [hit_id for hit_id, _rank in hits]
                    params["text_hit_ranks"] = [rank for _hit_id, rank in hits]
                    rankings.append(sql.TEXT_HITS_GIVEN)
        if mode in ("hybrid", "rrf", "vector"):
            if bot_chunks is None:
                bot_chunks = _bot_chunk_count(cursor, bot=bot)
                own_indexes = bot_own_indexes(cursor, bot.pk, bot_chunks)
            vector_hits = _vector_hits_sql(cursor, bot_chunks, params, own_indexes)
            rankings.append(f"SELECT id, rank FROM ({vector_hits}) AS vector_hits")
        if not rankings:
            return []
        # Every candidate is scored by similarity and text match, whichever ranker found it.
        embedding = _query_embedding(query, query_vector)
        params["vector"] = vector_literal(embedding.vector)
        params["aux_vector"] = vector_literal(embedding.aux) if embedding.aux is not None else None
        params["aux_weight"] = AUX_WEIGHT
        fused = (
            f"SELECT id, sum(1.0 / ({RRF_K} + rank)) AS fused FROM ({' UNION ALL '.join(rankings)}) AS r GROUP BY id"
        )
        cursor.execute(sql.PASSAGES.format(ranking=fused, text_score=text_score), params)
        rows = cursor.fetchall()
    if not rows:
        return []
    best_similarity = max(float(row[8]) for row in rows)
    passages = []
    for _pk, chunk_id, document_id, title, text, position, heading, page, similarity, matched, _fused in rows:
        similarity = float(similarity)
        text_match = min(float(matched) / text_total, 1.0) if text_total else 0.0
        score = relevance(similarity=similarity, best_similarity=best_similarity, text_match=text_match)
        passages.append(
            Passage(
                chunk_id=chunk_id,
                document_id=document_id,
                title=title,
                text=text,
                snippet=make_snippet(text),
                score=round(score, 6),
                position=position,
                heading=heading,
                page=page,
                similarity=round(min(max(similarity, 0.0), 1.0), 6),
                text_match=round(text_match, 6),
            )
        )
    if mode == "hybrid":
        # Python's sort is stable: equal scores keep the fused order.
        passages.sort(key=lambda passage: -passage.score)
    return passages


def query_embedding(query: str) -> ndarray:
    """The configured model's embedding of the query (without surrounding spaces): what the vector ranker
    and curated answers compare with."""
    return configured_embedder().embed([query.strip()])[0]


def query_embeddings(query: str) -> QueryEmbedding:
    """The embeddings `search` compares chunks with: the query (without surrounding spaces) by each model of
    the ensemble, the two models running at the same time."""
    return query_embeddings_start(query)()


def query_embeddings_start(query: str) -> Callable[[], QueryEmbedding]:
    """`query_embeddings` computed on worker threads from now; call the result for it."""
    result = embed_question_start(configured_embedder(), auxiliary_embedder(), query.strip())

    def embedding() -> QueryEmbedding:
        vector, aux = result()
        return QueryEmbedding(vector=vector, aux=aux)

    return embedding


def _query_embedding(query: str, query_vector: QueryVector | None, *, ensemble: bool = True) -> QueryEmbedding:
    """The query's embeddings: `query_vector`'s, computed when not given (the second model's only if
    `ensemble`: a caller that has only the first model's vector gets the second's computed here)."""
    if query_vector is None:
        return query_embeddings(query) if ensemble else QueryEmbedding(vector=query_embedding(query))
    value = query_vector() if callable(query_vector) else query_vector
    if isinstance(value, QueryEmbedding):
        return value
    auxiliary = auxiliary_embedder() if ensemble else None
    return QueryEmbedding(vector=value, aux=auxiliary.embed_query(query.strip()) if auxiliary is not None else None)


def vector_literal(vector: ndarray) -> str:
    """pgvector's text form of a vector, for a query parameter. 9 significant digits give each float32 back
    exactly, so a vector written this way is the one computed (as ingestion stores it)."""
    return "[" + ",".join(f"{value:.9g}" for value in np.asarray(vector).tolist()) + "]"


# The HNSW settings each pooled connection was given for the whole session (see `_hnsw_configure`).
_hnsw_session_settings: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hnsw_configure(cursor, *, ef_search: int) -> None:
    """Let the HNSW scan search `ef_search` candidates, iteratively, until enough rows pass the bot filter.

    Outside a transaction the settings are made once per database connection, for the session (only
    vector searches read them, and every one sets what it needs): one round trip saved per search.
    Inside one (tests, a caller's atomic block) they are local to it, as a rollback would undo them.
    """
    wanted = ("relaxed_order", str(ef_search))
    if connection.in_atomic_block:
        session, raw = False, None
    else:
        session, raw = True, connection.connection
        if _hnsw_session_settings.get(raw) == wanted:
            return
    cursor.execute(
        "SELECT set_config('hnsw.iterative_scan', %s, %s), set_config('hnsw.ef_search', %s, %s)",
        [wanted[0], not session, wanted[1], not session],
    )
    if session:
        _hnsw_session_settings[raw] = wanted


def vector_search_is_exact(bot_chunks: int) -> bool:
    """Whether a bot holding this many chunks is searched exactly rather than through the HNSW index."""
    return bot_chunks <= settings.KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS


def _bot_chunk_count(cursor, *, bot) -> int:
    cursor.execute("SELECT chunk_count FROM knowledge_lexemestat WHERE bot_id = %s AND lexeme = ''", [bot.pk])
    row = cursor.fetchone()
    return row[0] if row else 0


def _vector_hits_sql(cursor, bot_chunks: int, params: dict, own_indexes: frozenset[str] = frozenset()) -> str:
    """The vector ranker's SQL: exact for a bot up to the threshold, else HNSW (configured on this connection):
    the bot's own graph when it has a valid one (`own_indexes`), the shared one filtered by bot otherwise."""
    if vector_search_is_exact(bot_chunks):
        return sql.EXACT_VECTOR_HITS
    if "hnsw" in own_indexes:
        # Every node of its own graph is the bot's: no filter eating into ef_search.
        _hnsw_configure(cursor, ef_search=max(settings.KNOWLEDGE_BOT_INDEX_EF_SEARCH, params["candidates"]))
        return sql.with_bot_literal(sql.VECTOR_HITS, params["bot_id"])
    _hnsw_configure(cursor, ef_search=max(settings.KNOWLEDGE_HNSW_EF_SEARCH, params["candidates"]))
    return sql.SHARED_VECTOR_HITS


def bot_indexes_state(cursor, bot_id: int) -> dict[str, bool]:
    """The bot's own indexes that exist (`knowledge.services.bot_indexes`), by kind ("hnsw", "gin"): True
    if valid, False if not (being built, or left by a build that failed)."""
    names = {sql.bot_index_name(bot_id, kind): kind for kind in sql.BOT_INDEX_KINDS}
    cursor.execute(sql.BOT_INDEXES_STATE, {"names": list(names)})
    return {names[name]: valid for name, valid in cursor.fetchall()}


def bot_own_indexes(cursor, bot_id: int, bot_chunks: int) -> frozenset[str]:
    """The kinds of the bot's own indexes search may use (valid ones); none looked up for a bot too small
    to have any."""
    if bot_chunks < settings.KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS:
        return frozenset()
    return frozenset(kind for kind, valid in bot_indexes_state(cursor, bot_id).items() if valid)


# What checking one of the bot's rows costs (fetching and decompressing its tsvector) against
# one GIN posting of the candidate words (measured at a million chunks: ~10 µs against ~0.5 µs).
BOT_ROW_COST_IN_POSTINGS = 20


def text_search_reads_bot_rows(bot_chunks: int, bot_matches: int, all_chunks: int) -> bool:
    """Whether the full-text ranker checks the bot's own rows rather than going through the GIN index.

    The GIN index holds every bot's chunks: its posting lists for the candidate words cost what
    those words match in the whole index. Assuming the words are as common in the other bots as
    in this one, that is `bot_matches` × `all_chunks` / `bot_chunks` postings, against
    `bot_chunks` rows to check the other way: a small bot in a large index reads its own rows.
    `all_chunks` is the planner's estimate (negative if unknown: the GIN index then).
    """
    if bot_chunks <= 0 or all_chunks <= 0:
        return False
    return bot_chunks * BOT_ROW_COST_IN_POSTINGS < bot_matches * all_chunks / bot_chunks


def _text_hits_sql(cursor, *, bot, query: str, params: dict) -> tuple[str | None, int, str, float, frozenset[str]]:
    """Plan the full-text ranker for this query; adds its parameters and returns its SQL (None: no hit
    possible), the bot's chunk count, which the same statement reads, the SQL of a chunk's matched IDF
    weight ("0" when the bot knows none of the query's lexemes), the query's total weight and the
    bot's own indexes search may use (`bot_own_indexes`)."""
    cursor.execute(sql.QUERY_LEXEMES, {"query": query, "bot_id": bot.pk})
    frequencies = dict(cursor.fetchall())
    total = frequencies.pop("", 0)
    all_chunks = frequencies.pop(None, -1)
    own_indexes = bot_own_indexes(cursor, bot.pk, total)
    plan = lexical_plan(frequencies, total) if total else None
    if plan is None:
        return None, total, "0", 0.0, own_indexes
    score_terms = []
    for index, (lexeme, weight) in enumerate(plan.weights.items()):
        params[f"text_term_{index}"] = _tsquery_term(lexeme)
        params[f"text_weight_{index}"] = weight
        score_terms.append(
            f"CASE WHEN search_vector @@ %(text_term_{index})s::tsquery THEN %(text_weight_{index})s ELSE 0 END"
        )
    params["text_candidates"] = " | ".join(_tsquery_term(lexeme) for lexeme in plan.candidate_terms)
    params["text_min_score"] = plan.min_score - 1e-9
    params["text_scan_limit"] = TEXT_CANDIDATE_BUDGET
    score = " + ".join(score_terms)
    matches = sum(frequencies[lexeme] for lexeme in plan.candidate_terms)
    if "gin" in own_indexes:
        # Its own GIN index: posting lists of its own chunks only.
        text_hits = sql.with_bot_literal(sql.TEXT_HITS, bot.pk)
    elif text_search_reads_bot_rows(total, matches, all_chunks):
        text_hits = sql.TEXT_HITS_BOT_ROWS
    else:
        text_hits = sql.TEXT_HITS
    return (
        text_hits.format(score=score),
        total,
        score.replace("search_vector", "c.search_vector"),
        sum(plan.weights.values()),
        own_indexes,
    )


def make_snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of the text, at most `limit` characters, cut at a word boundary."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"
