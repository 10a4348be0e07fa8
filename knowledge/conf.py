"""The embedder the settings choose, shared by ingestion and retrieval."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from knowledge.embeddings import get_embedder
from knowledge.models import EMBEDDING_DIMENSION


def configured_embedder():
    """The process-wide embedder for `EMBEDDINGS_PROVIDER` (loaded once per process)."""
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


def embedder_warm_up() -> bool:
    """Load the local embedding model and embed one text, for a process about to take requests (the web
    process's start-up, `bothero.lifespan`), so that no request waits for it. Returns whether there was a
    model to load: with `EMBEDDINGS_PROVIDER=openai` the embedder is an HTTP client and nothing is done."""
    if settings.EMBEDDINGS_PROVIDER != "local":
        return False
    configured_embedder().embed(["warm-up"])
    return True
