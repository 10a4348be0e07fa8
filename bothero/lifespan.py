"""The web process's ASGI lifespan: what it does once at start-up, before uvicorn accepts a connection.

uvicorn runs the lifespan's start-up before it serves (with `--workers N`, each
worker before it accepts from the shared socket), so a freshly started process
loads the embedding model here rather than with its first question: loading it
is seconds of CPU, and the requests that arrived meanwhile held pooled
connections past `DB_POOL_TIMEOUT` and answered 503 (docs/performance.md, the
warm-up of `bench/load.py`). It builds the chat provider here too: with
`LLM_PROVIDER=openai` that imports the `openai` SDK (about a second of CPU, several
on a busy machine), and the first questions of a process, each holding its pooled
connection, queued behind that import in `get_provider` until some waited past
`DB_POOL_TIMEOUT`. `manage.py` commands, Celery and the tests never
run it; a server without lifespan support skips it.
"""

import asyncio
import logging
import time

from conversations.providers import get_provider
from knowledge.conf import embedder_warm_up

logger = logging.getLogger(__name__)


class _StartupFailed(Exception):
    """A start-up step failed (logged); the message is what uvicorn is told."""


async def _startup_step(function, failure: str):
    """Run one blocking start-up step on a thread; a failure is logged with `failure` and stops the start:
    a model or a chat provider that cannot be loaded would fail every question, so the process refuses
    to serve rather than answer 500s."""
    try:
        return await asyncio.to_thread(function)
    except Exception as exc:
        logger.exception(failure)
        raise _StartupFailed(f"{type(exc).__name__}: {exc}") from exc


async def lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                started = time.monotonic()
                loaded = await _startup_step(embedder_warm_up, "The embedding model did not load; not starting.")
                if loaded:
                    logger.info("Embedding model loaded in %.1f s, before taking requests.", time.monotonic() - started)
                started = time.monotonic()
                provider = await _startup_step(get_provider, "The chat provider could not be built; not starting.")
                logger.info("Chat provider %s ready in %.1f s, before taking requests.", provider.name,
                            time.monotonic() - started)  # fmt: skip
            except _StartupFailed as failed:
                await send({"type": "lifespan.startup.failed", "message": str(failed)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
