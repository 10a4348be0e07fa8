"""The knowledge base's hand-written SQL: retrieval (hybrid search) and the full-text statistics."""

from collections.abc import Iterator
from contextlib import contextmanager

from knowledge.models import FULLTEXT_CONFIG

# Adds (or removes) the document's chunks to the bot's document frequencies. Rows are
# written in lexeme order, so concurrent writers for one bot lock them in the same order.
LEXEME_STATS_CHANGE = """
    INSERT INTO knowledge_lexemestat (bot_id, lexeme, chunk_count)
    SELECT %(bot_id)s, lexeme, chunk_count FROM (
        SELECT word AS lexeme, %(sign)s * ndoc AS chunk_count FROM ts_stat(%(chunks_query)s)
        UNION ALL
        SELECT '', %(sign)s * %(total)s
    ) AS counts
    ORDER BY lexeme
    ON CONFLICT (bot_id, lexeme) DO UPDATE SET chunk_count = knowledge_lexemestat.chunk_count + EXCLUDED.chunk_count
"""

# Nearest chunks of one bot by cosine distance, ranked 1..n, through the HNSW index (approximate).
VECTOR_HITS = """
    SELECT id, row_number() OVER (ORDER BY distance, id) AS rank
    FROM (
        SELECT id, embedding <=> %(vector)s::vector AS distance
        FROM knowledge_chunk
        WHERE bot_id = %(bot_id)s
        ORDER BY embedding <=> %(vector)s::vector
        LIMIT %(candidates)s
    ) AS nearest
"""

# The same through the shared graph: its index holds only the chunks with `in_shared_index` (the
# predicate, in the statement so the planner can use it), which is all of a bot's chunks unless the bot
# has a valid graph of its own (searched with VECTOR_HITS and the bot's id as a literal).
SHARED_VECTOR_HITS = VECTOR_HITS.replace("WHERE bot_id = %(bot_id)s", "WHERE bot_id = %(bot_id)s AND in_shared_index")
assert SHARED_VECTOR_HITS != VECTOR_HITS

# The same ranking, exact: every chunk of the bot (found through the index on bot_id) is
# compared. `OFFSET 0` keeps the subquery from being flattened, so the planner cannot turn
# the ORDER BY into an HNSW index scan, which would be approximate (and, for a bot holding
# a small share of the index, slower than the scan).
EXACT_VECTOR_HITS = """
    SELECT id, row_number() OVER (ORDER BY distance, id) AS rank
    FROM (
        SELECT id, distance FROM (
            SELECT id, embedding <=> %(vector)s::vector AS distance
            FROM knowledge_chunk
            WHERE bot_id = %(bot_id)s
            OFFSET 0
        ) AS bot_chunks
        ORDER BY distance, id
        LIMIT %(candidates)s
    ) AS nearest
"""

# Chunks of one bot matching enough of the query's weight, ranked 1..n (see `knowledge.selectors.lexical_plan`).
_TEXT_HITS = """
    SELECT id, row_number() OVER (
        ORDER BY text_score DESC, ts_rank_cd(search_vector, %(text_candidates)s::tsquery) DESC, id
    ) AS rank
    FROM (
        SELECT id, search_vector, text_score FROM (
            SELECT id, search_vector, ({score}) AS text_score
            FROM <chunks>
            WHERE bot_id = %(bot_id)s AND search_vector @@ %(text_candidates)s::tsquery
            LIMIT %(text_scan_limit)s
        ) AS matching
        WHERE text_score >= %(text_min_score)s
        ORDER BY text_score DESC
        LIMIT %(candidates)s
    ) AS matched
"""
# The candidates found through the GIN index on the tsvector: it holds every bot's chunks, so its
# posting lists cost what the query's words match in the whole index, before the bot filter.
TEXT_HITS = _TEXT_HITS.replace("<chunks>", "knowledge_chunk")
# The full-text ranker's hits, found by one of the statements above and passed back, ranked, into
# the statement that scores every candidate (`PASSAGES`).
TEXT_HITS_GIVEN = (
    "SELECT * FROM unnest(%(text_hit_ids)s::bigint[], %(text_hit_ranks)s::bigint[]) AS text_hits(id, rank)"
)
# The same hits from the bot's own rows (index on bot_id), each one's tsvector checked: costs what
# the bot holds. `OFFSET 0` keeps the planner from merging the two and going back to the GIN index.
TEXT_HITS_BOT_ROWS = _TEXT_HITS.replace(
    "<chunks>",
    "(SELECT id, bot_id, search_vector FROM knowledge_chunk WHERE bot_id = %(bot_id)s OFFSET 0) AS bot_chunks",
)

# The candidates of both rankers with what the relevance model needs: each one's similarity
# (the ensemble's: the weighted mean of both models' cosine similarities; the first model's
# alone when the chunk or the query has no second vector) and the IDF weight of the query's
# lexemes it contains (`{text_score}`, 0 when the query has no lexeme the bot knows), in the
# ranking's order (`fused`: reciprocal rank fusion of the rankers given, which the calibrated
# order replaces for `hybrid`).
PASSAGES = """
    SELECT c.id, c.public_id, d.public_id, d.title, c.text, c.position, c.heading, c.page,
           coalesce(
               (1 - %(aux_weight)s) * (1 - (c.embedding <=> %(vector)s::vector))
               + %(aux_weight)s * (1 - (c.embedding_aux <=> %(aux_vector)s::vector)),
               1 - (c.embedding <=> %(vector)s::vector)
           ) AS similarity,
           ({text_score}) AS text_score, f.fused
    FROM ({ranking}) AS f
    JOIN knowledge_chunk c ON c.id = f.id
    JOIN knowledge_document d ON d.id = c.document_id
    WHERE c.tenant_id = %(tenant_id)s AND d.status = 'ready'
    ORDER BY f.fused DESC, similarity DESC, c.id
"""

# The query's lexemes (parsed like the chunks' text) with their document frequency in
# the bot; the empty lexeme brings the bot's total chunk count, NULL the planner's estimate
# of the chunks of all bots (-1 before the table was first analysed).
QUERY_LEXEMES = f"""
    SELECT q.lexeme, coalesce(s.chunk_count, 0)
    FROM unnest(array_append(tsvector_to_array(to_tsvector('{FULLTEXT_CONFIG}', %(query)s)), '')) AS q(lexeme)
    LEFT JOIN knowledge_lexemestat s ON s.bot_id = %(bot_id)s AND s.lexeme = q.lexeme
    UNION ALL
    SELECT NULL, reltuples::bigint FROM pg_class WHERE oid = 'knowledge_chunk'::regclass
"""

# A large bot's own indexes (`knowledge.services.bot_indexes`): partial indexes over its rows only, named
# from its primary key. The bot's id is written into the statements that should use them as a literal,
# as the predicate is (a bound parameter would hide it from the planner: the shared indexes then).
BOT_INDEX_KINDS = ("hnsw", "gin")
BOT_INDEX_DEFINITIONS = {
    "hnsw": "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
    "gin": "USING gin (search_vector)",
}


def bot_index_name(bot_id: int, kind: str) -> str:
    """The name of a bot's own index of this kind ("hnsw" or "gin")."""
    return f"knowledge_chunk_bot{int(bot_id)}_{kind}"


def with_bot_literal(statement: str, bot_id: int) -> str:
    """The statement with the bot's id as a literal where it reads `bot_id = %(bot_id)s`."""
    return statement.replace("bot_id = %(bot_id)s", f"bot_id = {int(bot_id)}")


# The bots with chunks outside the shared graph (`Chunk.in_shared_index` false), one index probe per bot
# through the partial index on them (a loose index scan: the rows are the large bots' newer chunks).
BOTS_OUTSIDE_SHARED_GRAPH = """
    WITH RECURSIVE outside(bot_id) AS (
        SELECT min(bot_id) FROM knowledge_chunk WHERE NOT in_shared_index
        UNION ALL
        SELECT (SELECT min(bot_id) FROM knowledge_chunk WHERE NOT in_shared_index AND bot_id > outside.bot_id)
        FROM outside WHERE outside.bot_id IS NOT NULL
    )
    SELECT bot_id FROM outside WHERE bot_id IS NOT NULL
"""

# Valid or not (a concurrent build that failed leaves an invalid index behind) of each index named.
BOT_INDEXES_STATE = """
    SELECT c.relname, i.indisvalid
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'knowledge_chunk'::regclass AND c.relname = ANY(%(names)s)
"""


@contextmanager
def session_lock_try(cursor, name: str) -> Iterator[bool]:
    """Try PostgreSQL's session-level advisory lock `name` on the cursor's connection: yields whether it was
    taken, and releases it on leaving. The session's, not a transaction's, so it can be held across work done
    with no transaction open; a worker that dies closes its connection, which releases it."""
    cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [name])
    (taken,) = cursor.fetchone()
    try:
        yield taken
    finally:
        if taken:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])
