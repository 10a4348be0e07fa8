"""A large bot's own search indexes: partial HNSW and GIN indexes over its chunks alone.

The shared HNSW graph holds every bot's chunks and is filtered after the walk, so a bot holding a
few per cent of the index is searched as if with a few per cent of `ef_search` (recall 0.84–0.92 at
a million chunks); the shared GIN index's posting lists hold every bot's matches. A bot above
KNOWLEDGE_BOT_INDEX_MIN_CHUNKS chunks therefore gets its own indexes (`knowledge.sql.bot_index_name`),
built with CREATE INDEX CONCURRENTLY (writes go on meanwhile) by the `knowledge.sync_bot_indexes` task,
queued when a change of its chunks commits; they are dropped, concurrently too, once it holds fewer
than KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS, or when it is deleted. Search uses an index only once it is
valid (`knowledge.selectors.bot_own_indexes`), the shared ones until then.

The state is the catalog itself: an index of that name exists and is valid, or not. A build that died
(worker killed, database restarted) leaves an invalid index behind; the next sync drops and rebuilds it.

A chunk written while its bot's own graph is valid goes into that graph alone (`Chunk.in_shared_index`
false; the shared HNSW index is partial on it), so a write into a large bot pays one graph insert, not
two (`chunks_skip_shared_graph`). Its chunks written before stay in the shared graph too. Before the own
graph is dropped they all go back into the shared one, so a chunk is always in a graph search can use;
the sync also puts back any left outside without a valid own graph (an ingestion racing the drop, a
graph dropped by hand), and the hourly sweep looks for them.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection

from knowledge import queueing, sql
from knowledge.selectors import bot_indexes_state

logger = logging.getLogger(__name__)


def _bot_chunks(cursor, bot_id: int) -> int:
    cursor.execute("SELECT chunk_count FROM knowledge_lexemestat WHERE bot_id = %s AND lexeme = ''", [bot_id])
    row = cursor.fetchone()
    return row[0] if row else 0


def bot_indexes_wanted(bot_chunks: int) -> bool | None:
    """Whether the bot should have its own indexes: True (build what is missing or invalid), False (drop
    them), None (leave them as they are: between the two thresholds, whatever it has stays)."""
    if bot_chunks > settings.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS:
        return True
    if bot_chunks < settings.KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS:
        return False
    return None


def chunks_skip_shared_graph(*, bot_id: int) -> bool:
    """In the caller's transaction, before it writes the bot's chunks: whether they should stay out of the
    shared graph (`Chunk.in_shared_index` false), i.e. the bot's own graph is valid now. One catalog read.

    The transaction locks the chunk table before reading: a DROP INDEX CONCURRENTLY of the graph marks it
    invalid, then waits for every transaction holding a lock on the table, so a write that read "valid"
    has committed (or not) when the drop returns, and the sync puts its chunks back (`_own_graph_drop`).
    """
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE knowledge_chunk IN ROW EXCLUSIVE MODE")
        return bot_indexes_state(cursor, bot_id).get("hnsw") is True


def _chunks_outside_shared_graph(cursor, bot_id: int) -> bool:
    cursor.execute("SELECT EXISTS (SELECT FROM knowledge_chunk WHERE bot_id = %s AND NOT in_shared_index)", [bot_id])
    return cursor.fetchone()[0]


def _chunks_to_shared_graph(cursor, bot_id: int) -> int:
    """Put the bot's chunks that are outside the shared graph back into it; how many there were."""
    cursor.execute(
        "UPDATE knowledge_chunk SET in_shared_index = true WHERE bot_id = %s AND NOT in_shared_index", [bot_id]
    )
    return cursor.rowcount


def bot_indexes_need_sync(cursor, bot_id: int) -> bool:
    """Whether the bot's indexes differ from what its chunk count wants, or chunks of a bot without a valid
    own graph are outside the shared one (read in the caller's transaction)."""
    state = bot_indexes_state(cursor, bot_id)
    wanted = bot_indexes_wanted(_bot_chunks(cursor, bot_id))
    if wanted is True and not (len(state) == len(sql.BOT_INDEX_KINDS) and all(state.values())):
        return True
    if wanted is False and state:
        return True
    return state.get("hnsw") is not True and _chunks_outside_shared_graph(cursor, bot_id)


def bot_indexes_queue_if_needed(*, bot_id: int) -> bool:
    """After a change of the bot's chunks (in its transaction): queue a sync of its indexes, on commit, if
    its chunk count wants other indexes than it has. Whether one was queued."""
    with connection.cursor() as cursor:
        if not bot_indexes_need_sync(cursor, bot_id):
            return False
    queueing.bot_indexes_sync_on_commit(bot_id)
    return True


def bot_indexes_sync(*, bot_id: int) -> list[str]:
    """Build (CONCURRENTLY) the bot's missing or invalid own indexes, or drop them, as its chunk count wants.

    Must run outside any transaction (concurrent index builds cannot run in one). One sync per bot at a
    time (a session advisory lock): another one finds the lock taken and returns at once, the running one
    reads the chunk count again after each step, so a change made meanwhile is not lost. A deleted bot
    has no chunks: its indexes are dropped. Without a valid own graph at the end, chunks of the bot left
    outside the shared graph are put back. Returns what it did ("built hnsw", "dropped gin", "busy",
    "put 12 chunks back into the shared graph", ...).
    """
    if connection.in_atomic_block:
        raise RuntimeError("bot_indexes_sync must run outside a transaction (CREATE INDEX CONCURRENTLY).")
    done: list[str] = []
    with connection.cursor() as cursor, sql.session_lock_try(cursor, f"knowledge.bot_indexes:{bot_id}") as taken:
        if not taken:
            return ["busy"]
        # Each pass does one step; a bot whose chunk count moved meanwhile gets another.
        for _pass in range(4):
            state = bot_indexes_state(cursor, bot_id)
            wanted = bot_indexes_wanted(_bot_chunks(cursor, bot_id))
            step = None
            if wanted is True:
                step = next((kind for kind in sql.BOT_INDEX_KINDS if not state.get(kind)), None)
                if step is not None:
                    _build(cursor, bot_id, step, invalid=step in state)
                    done.append(f"built {step}")
            elif wanted is False and state:
                step = next(kind for kind in sql.BOT_INDEX_KINDS if kind in state)
                if step == "hnsw":
                    _own_graph_drop(cursor, bot_id)
                else:
                    cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{sql.bot_index_name(bot_id, step)}"')
                done.append(f"dropped {step}")
            if step is None:
                break
        if bot_indexes_state(cursor, bot_id).get("hnsw") is not True:
            # Left by a sync that died between a drop and its second pass, or a graph dropped by hand.
            returned = _chunks_to_shared_graph(cursor, bot_id)
            if returned:
                done.append(f"put {returned} chunks back into the shared graph")
    if done:
        logger.info("Bot %s's own search indexes: %s", bot_id, ", ".join(done))
    return done


def _own_graph_drop(cursor, bot_id: int) -> None:
    # Its chunks written since it has the graph are in no other: into the shared one first, so that
    # none is ever in no graph. A write that read the graph as valid before the drop marked it invalid
    # may commit after this first pass; the drop waits for it (`chunks_skip_shared_graph` locks the table
    # before reading), so the second pass finds its chunks.
    _chunks_to_shared_graph(cursor, bot_id)
    cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{sql.bot_index_name(bot_id, "hnsw")}"')
    _chunks_to_shared_graph(cursor, bot_id)


def _build(cursor, bot_id: int, kind: str, *, invalid: bool) -> None:
    name = sql.bot_index_name(bot_id, kind)
    if invalid:
        # Left by a build that died (we hold the bot's lock, so none is running): it is never used, but
        # still updated by every write, and CREATE ... IF NOT EXISTS would keep it.
        logger.warning("Rebuilding %s, left invalid by a failed build", name)
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
    cursor.execute("SELECT set_config('maintenance_work_mem', %s, false)", [settings.KNOWLEDGE_BOT_INDEX_BUILD_MEMORY])
    try:
        cursor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON knowledge_chunk '
            f"{sql.BOT_INDEX_DEFINITIONS[kind]} WHERE bot_id = {int(bot_id)}"
        )
    finally:
        cursor.execute("RESET maintenance_work_mem")


def bot_indexes_out_of_date() -> list[int]:
    """Ids of the bots whose own indexes are missing, invalid or no longer wanted, or with chunks outside the
    shared graph and no valid own graph (for the hourly sweep)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bot_id FROM knowledge_lexemestat WHERE lexeme = '' AND chunk_count > %s "
            "UNION SELECT substring(c.relname FROM '^knowledge_chunk_bot(\\d+)_')::bigint "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'knowledge_chunk'::regclass AND c.relname ~ '^knowledge_chunk_bot\\d+_' "
            f"UNION SELECT bot_id FROM ({sql.BOTS_OUTSIDE_SHARED_GRAPH}) AS outside",
            [settings.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS],
        )
        candidates = sorted(row[0] for row in cursor.fetchall())
        return [bot_id for bot_id in candidates if bot_indexes_need_sync(cursor, bot_id)]
