"""Knowledge base reads: documents, and hybrid retrieval for the chat engine and hit testing.

Retrieval (`search`) runs two rankers over one bot's chunks, in one SQL statement:

* vector, cosine distance: a bot holding at most `KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS`
  chunks (most bots) is scanned exactly through the index on `bot_id`, so its
  ranking is exact whatever the rest of the index holds; a larger one goes
  through the pgvector HNSW index, with iterative index scans
  (`hnsw.iterative_scan = relaxed_order`) so the bot filter still yields
  enough neighbours, the approximate candidates re-ordered by exact distance;
* full text: the chunks' generated `tsvector` (GIN), weighted by each query
  lexeme's IDF in the bot (`LexemeStat`), a hit having to match a share of
  the query's weight (see `lexical_plan`);

then fuses the two rankings by reciprocal rank fusion (k = 60). Each passage's
`score` is its cosine similarity to the query (absolute relevance, 0..1),
which the bot's `min_score` cuts on.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from numpy import ndarray

from bothero.errors import NotFoundError, ValidationError
from knowledge import sql
from knowledge.conf import configured_embedder
from knowledge.models import Document

# A query's embedding, or a callable giving it (e.g. `Future.result`).
QueryVector = ndarray | Callable[[], ndarray]

RRF_K = 60
SNIPPET_CHARS = 300
MODES = ("hybrid", "vector", "fulltext")


@dataclass(frozen=True)
class Passage:
    chunk_id: str  # public id of the chunk, e.g. "chk_..."
    document_id: str  # "doc_..."
    title: str  # the document's title
    text: str  # the full chunk text (what a prompt should include)
    snippet: str  # at most ~300 characters of the chunk, for display
    score: float  # cosine similarity of the chunk to the query, 0..1 (absolute relevance; the min_score cut uses it)
    position: int  # chunk position in its document
    heading: str | None  # section heading kept as context
    page: int | None  # page number (PDF) or None


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
    up to KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS chunks, pgvector HNSW above),
    fused by reciprocal-rank fusion (k=60), ordered by fused rank, then cut at min_score on `score`.
    top_k defaults to bot.retrieval["top_k"], min_score to bot.retrieval["min_score"]. Only chunks of
    documents with status "ready". Embeds the query (local ONNX model by default) unless `query_vector`
    gives its embedding: the vector, or a callable returning it (such as the `result` of a Future
    computing it elsewhere), called only once the full-text ranker is planned so the two overlap."""
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
    """`search` with a choice of ranker: "hybrid" (the product), or "vector" / "fulltext" alone (for evaluation)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if bot.tenant_id != tenant.pk:
        raise NotFoundError(f"No such bot: {bot.public_id}.", code="bot_not_found", param="bot_id")
    retrieval = bot.retrieval or {}
    top_k = int(top_k if top_k is not None else retrieval.get("top_k", 5))
    min_score = float(min_score if min_score is not None else retrieval.get("min_score", 0.0))
    if top_k < 1:
        raise ValidationError("top_k must be at least 1.", code="invalid_top_k", param="top_k")
    query = query.strip()
    if not query:
        return []
    params = {
        "bot_id": bot.pk,
        "tenant_id": tenant.pk,
        "candidates": max(settings.KNOWLEDGE_SEARCH_CANDIDATES, top_k),
    }
    # Read-only statements, in autocommit unless the caller is in a transaction: no BEGIN/COMMIT
    # round trips, and no transaction of ours held open while the query is embedded (the slow part).
    with connection.cursor() as cursor:
        rankings = []
        bot_chunks = None
        if mode in ("hybrid", "fulltext"):
            text_hits, bot_chunks = _text_hits_sql(cursor, bot=bot, query=query, params=params)
            if text_hits:
                rankings.append(f"SELECT id, rank FROM ({text_hits}) AS text_hits")
        if mode in ("hybrid", "vector"):
            if bot_chunks is None:
                bot_chunks = _bot_chunk_count(cursor, bot=bot)
            rankings.append(f"SELECT id, rank FROM ({_vector_hits_sql(cursor, bot_chunks, params)}) AS vector_hits")
        if not rankings:
            return []
        # Every passage is scored by cosine similarity, whichever ranker found it.
        vector = _query_embedding(query, query_vector)
        params["vector"] = "[" + ",".join(f"{value:.7g}" for value in vector.tolist()) + "]"
        fused = (
            f"SELECT id, sum(1.0 / ({RRF_K} + rank)) AS fused FROM ({' UNION ALL '.join(rankings)}) AS r GROUP BY id"
        )
        cursor.execute(sql.PASSAGES.format(ranking=fused), params)
        rows = cursor.fetchall()
    passages = []
    for _pk, chunk_id, document_id, title, text, position, heading, page, similarity, _fused in rows:
        score = min(max(float(similarity), 0.0), 1.0)
        if score < min_score:
            continue
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
            )
        )
        if len(passages) == top_k:
            break
    return passages


def query_embedding(query: str) -> ndarray:
    """The embedding `search` compares chunks with (of the query without surrounding spaces)."""
    return configured_embedder().embed([query.strip()])[0]


def _query_embedding(query: str, query_vector: QueryVector | None):
    if query_vector is None:
        return query_embedding(query)
    return query_vector() if callable(query_vector) else query_vector


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


def _vector_hits_sql(cursor, bot_chunks: int, params: dict) -> str:
    """The vector ranker's SQL: exact for a bot up to the threshold, else HNSW (configured on this connection)."""
    if vector_search_is_exact(bot_chunks):
        return sql.EXACT_VECTOR_HITS
    _hnsw_configure(cursor, ef_search=max(settings.KNOWLEDGE_HNSW_EF_SEARCH, params["candidates"]))
    return sql.VECTOR_HITS


def _text_hits_sql(cursor, *, bot, query: str, params: dict) -> tuple[str | None, int]:
    """Plan the full-text ranker for this query; adds its parameters and returns its SQL (None: no hit
    possible) and the bot's chunk count, which the same statement reads."""
    cursor.execute(sql.QUERY_LEXEMES, {"query": query, "bot_id": bot.pk})
    frequencies = dict(cursor.fetchall())
    total = frequencies.pop("", 0)
    plan = lexical_plan(frequencies, total) if total else None
    if plan is None:
        return None, total
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
    return sql.TEXT_HITS.format(score=" + ".join(score_terms)), total


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
