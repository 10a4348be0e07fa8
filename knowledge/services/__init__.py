"""Knowledge base writes: documents in (`documents`), ingestion (parse → chunk → embed → index, `ingestion`),
curated answers (`answers`), website sources (`sources`), large bots' own search indexes (`bot_indexes`), the
ensemble's second vector for chunks stored without it (`embedding_backfill`).

Callers use `from knowledge import services`; the two modules hold the code.
"""

from knowledge.services.answers import (
    curated_answer_create,
    curated_answer_delete,
    curated_answer_from_message,
    curated_answer_update,
    curated_answer_used,
)
from knowledge.services.bot_indexes import (
    bot_indexes_out_of_date,
    bot_indexes_queue_if_needed,
    bot_indexes_sync,
)
from knowledge.services.documents import (
    chunks_delete,
    document_create_from_file,
    document_create_from_text,
    document_create_from_url,
    document_delete,
    document_reindex,
    documents_requeue_stale,
    lexeme_stats_change,
)
from knowledge.services.embedding_backfill import BackfillResult, chunks_aux_backfill
from knowledge.services.ingestion import (
    ClaimLost,
    IngestionError,
    document_claim_renew,
    document_fail,
    document_ingest,
    embedding_input,
)
from knowledge.services.sources import (
    website_source_create,
    website_source_delete,
    website_source_sync,
    website_source_sync_queue,
    website_source_sync_request,
    website_sources_due,
)

__all__ = [
    "BackfillResult",
    "ClaimLost",
    "IngestionError",
    "bot_indexes_out_of_date",
    "bot_indexes_queue_if_needed",
    "bot_indexes_sync",
    "chunks_aux_backfill",
    "chunks_delete",
    "curated_answer_create",
    "curated_answer_delete",
    "curated_answer_from_message",
    "curated_answer_update",
    "curated_answer_used",
    "document_claim_renew",
    "document_create_from_file",
    "document_create_from_text",
    "document_create_from_url",
    "document_delete",
    "document_fail",
    "document_ingest",
    "document_reindex",
    "documents_requeue_stale",
    "embedding_input",
    "lexeme_stats_change",
    "website_source_create",
    "website_source_delete",
    "website_source_sync",
    "website_source_sync_queue",
    "website_source_sync_request",
    "website_sources_due",
]
