"""The embedders the settings choose, shared by ingestion and retrieval."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from knowledge.embeddings import embed_question, get_auxiliary_embedder, get_embedder
from knowledge.models import EMBEDDING_DIMENSION


def configured_embedder():
    """The process-wide embedder for `EMBEDDINGS_PROVIDER` (loaded once per process): the indexed vectors'."""
    embedder = get_embedder(
        settings.EMBEDDINGS_PROVIDER,
        base_url=settings.EMBEDDINGS_BASE_URL or None,
        api_key=settings.EMBEDDINGS_API_KEY or None,
        model=settings.EMBEDDINGS_MODEL or None,
    )
    if embedder.dimension != EMBEDDING_DIMENSION:
        raise ImproperlyConfigured(
            f"The embedding model gives {embedder.dimension}-dimensional vectors; the index stores "
            f"{EMBEDDING_DIMENSION}."
        )
    return embedder


def auxiliary_embedder():
    """The ensemble's second model (bge-small-en, `Chunk.embedding_aux`) with the local provider; None with an
    embedding API, whose model is used alone (the ensemble was measured with all-MiniLM-L6-v2)."""
    if settings.EMBEDDINGS_PROVIDER != "local":
        return None
    return get_auxiliary_embedder()


def embedding_model_name() -> str:
    """What a document records as its embedding model: both models' names when the ensemble is in use."""
    auxiliary = auxiliary_embedder()
    name = configured_embedder().model_name
    return f"{name}+{auxiliary.model_name}" if auxiliary is not None else name


def embedder_warm_up() -> bool:
    """Load the local embedding models and embed one text with each, for a process about to take requests (the
    web process's start-up, `bothero.lifespan`), so that no request waits for them. Returns whether there was a
    model to load: with `EMBEDDINGS_PROVIDER=openai` the embedder is an HTTP client and nothing is done."""
    if settings.EMBEDDINGS_PROVIDER != "local":
        return False
    # As a question is embedded (`knowledge.selectors.query_embeddings`): both models, the second on its thread.
    embed_question(configured_embedder(), auxiliary_embedder(), "warm-up")
    return True
