"""Knowledge base reads: documents, and hybrid retrieval for the chat engine and hit testing.

Retrieval (`search`) runs two rankers over one bot's chunks, in one SQL statement:

* vector: pgvector HNSW, cosine distance, with iterative index scans
  (`hnsw.iterative_scan = relaxed_order`) so the bot filter still yields
  enough neighbours when the bot holds a small share of the index;
* full text: the chunks' generated `tsvector` (GIN), any query term matching
  (an OR of the query's lexemes), ranked by `ts_rank_cd`;

then fuses the two rankings by reciprocal rank fusion (k = 60). Each passage's
`score` is its cosine similarity to the query (absolute relevance, 0..1),
which the bot's `min_score` cuts on.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from bothero.errors import NotFoundError, ValidationError
from knowledge.conf import configured_embedder
from knowledge.models import FULLTEXT_CONFIG, Document

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


def document_get(*, tenant, public_id: str) -> Document:
    """The tenant's document with this id, or NotFoundError (`document_not_found`), also for another tenant's."""
    document = Document.objects.filter(tenant=tenant, public_id=public_id).select_related("bot", "tenant").first()
    if document is None:
        raise NotFoundError(f"No such document: {public_id}.", code="document_not_found", param="id")
    return document


# --------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------

# Nearest chunks of one bot by cosine distance, ranked 1..n.
_VECTOR_HITS = """
    SELECT id, row_number() OVER (ORDER BY distance, id) AS rank
    FROM (
        SELECT id, embedding <=> %(vector)s::vector AS distance
        FROM knowledge_chunk
        WHERE bot_id = %(bot_id)s
        ORDER BY embedding <=> %(vector)s::vector
        LIMIT %(candidates)s
    ) AS nearest
"""

# Chunks of one bot matching any of the query's lexemes, ranked 1..n by cover density.
_TEXT_HITS = f"""
    SELECT id, row_number() OVER (ORDER BY text_rank DESC, id) AS rank
    FROM (
        SELECT id, ts_rank_cd(search_vector, query) AS text_rank
        FROM knowledge_chunk
        CROSS JOIN (
            SELECT replace(plainto_tsquery('{FULLTEXT_CONFIG}', %(query)s)::text, ' & ', ' | ')::tsquery AS query
        ) AS any_term
        WHERE bot_id = %(bot_id)s AND search_vector @@ query
        ORDER BY text_rank DESC
        LIMIT %(candidates)s
    ) AS matched
"""

_PASSAGES = """
    SELECT c.id, c.public_id, d.public_id, d.title, c.text, c.position, c.heading, c.page,
           1 - (c.embedding <=> %(vector)s::vector) AS similarity, f.fused
    FROM ({ranking}) AS f
    JOIN knowledge_chunk c ON c.id = f.id
    JOIN knowledge_document d ON d.id = c.document_id
    WHERE c.tenant_id = %(tenant_id)s AND d.status = 'ready'
    ORDER BY f.fused DESC, similarity DESC, c.id
"""

_FUSED = f"""
    SELECT id, sum(1.0 / ({RRF_K} + rank)) AS fused
    FROM (
        SELECT id, rank FROM ({_VECTOR_HITS}) AS vector_hits
        UNION ALL
        SELECT id, rank FROM ({_TEXT_HITS}) AS text_hits
    ) AS both_rankings
    GROUP BY id
"""

_SINGLE = {
    "vector": f"SELECT id, 1.0 / ({RRF_K} + rank) AS fused FROM ({_VECTOR_HITS}) AS hits",
    "fulltext": f"SELECT id, 1.0 / ({RRF_K} + rank) AS fused FROM ({_TEXT_HITS}) AS hits",
    "hybrid": _FUSED,
}


def search(*, tenant, bot, query: str, top_k: int | None = None, min_score: float | None = None) -> list[Passage]:
    """Hybrid retrieval restricted to `bot` (and its tenant): Postgres full-text + pgvector HNSW cosine,
    fused by reciprocal-rank fusion (k=60), ordered by fused rank, then cut at min_score on `score`.
    top_k defaults to bot.retrieval["top_k"], min_score to bot.retrieval["min_score"]. Only chunks of
    documents with status "ready". Embeds the query (local ONNX model by default)."""
    return search_ranked(tenant=tenant, bot=bot, query=query, top_k=top_k, min_score=min_score, mode="hybrid")


def search_ranked(
    *, tenant, bot, query: str, top_k: int | None = None, min_score: float | None = None, mode: str = "hybrid"
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
    # Embedding is the slow part: done before any transaction opens.
    vector = configured_embedder().embed([query])[0]
    params = {
        "vector": "[" + ",".join(f"{value:.7g}" for value in vector.tolist()) + "]",
        "bot_id": bot.pk,
        "tenant_id": tenant.pk,
        "query": query,
        "candidates": max(settings.KNOWLEDGE_SEARCH_CANDIDATES, top_k),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # Iterative scans keep walking the HNSW graph until enough rows pass the bot filter.
        cursor.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true)",
            [str(max(settings.KNOWLEDGE_HNSW_EF_SEARCH, params["candidates"]))],
        )
        cursor.execute(_PASSAGES.format(ranking=_SINGLE[mode]), params)
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
