"""A web process loads the embedding model and builds its chat provider at start-up, before it accepts a
connection (`bothero.lifespan`), so that its first requests do not wait behind either while holding pooled
connections (docs/operations.md)."""

import httpx
import pytest

from bothero.testing.processes import uvicorn_server

LOADED = "Embedding model loaded in"
PROVIDER_READY = "Chat provider openai ready in"
LISTENING = "Uvicorn running on"


def served_log(tmp_path, **env) -> list[str]:
    """The log of uvicorn, as deployed, from its start to its first answer."""
    log_path = tmp_path / "web.log"
    with open(log_path, "w") as log, uvicorn_server(log_level="info", output=log, LOG_LEVEL="INFO", **env) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
    return log_path.read_text().splitlines()


def first_line(lines: list[str], text: str) -> int:
    return next(number for number, line in enumerate(lines) if text in line)


@pytest.mark.slow
def test_a_web_process_loads_the_embedding_model_before_it_listens(db, tmp_path):
    lines = served_log(tmp_path, EMBEDDINGS_PROVIDER="local")
    assert first_line(lines, LOADED) < first_line(lines, "Application startup complete") < first_line(lines, LISTENING)


@pytest.mark.slow
def test_with_openai_embeddings_there_is_no_model_to_load(db, tmp_path):
    lines = served_log(tmp_path, EMBEDDINGS_PROVIDER="openai", EMBEDDINGS_API_KEY="sk-test")
    assert not [line for line in lines if LOADED in line]
    assert first_line(lines, "Application startup complete") < first_line(lines, LISTENING)


@pytest.mark.slow
def test_a_web_process_builds_its_chat_provider_before_it_listens(db, tmp_path):
    # The openai SDK's import was what the first questions queued behind (in `get_provider`), holding connections.
    lines = served_log(tmp_path, EMBEDDINGS_PROVIDER="openai", EMBEDDINGS_API_KEY="sk-test", LLM_PROVIDER="openai",
                       LLM_BASE_URL="http://127.0.0.1:9/v1", LLM_API_KEY="sk-test")  # fmt: skip
    assert (
        first_line(lines, PROVIDER_READY)
        < first_line(lines, "Application startup complete")
        < first_line(lines, LISTENING)
    )
