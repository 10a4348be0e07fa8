import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from tokenizers import Tokenizer

from bothero.testing.processes import BASE_DIR
from knowledge.embeddings import (
    DIMENSION,
    EmbeddingError,
    LocalEmbedder,
    OpenAIEmbedder,
    get_embedder,
)


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return get_embedder()


# Local model --------------------------------------------------------------


def test_it_describes_the_local_model(embedder):
    assert embedder.model_name == "all-MiniLM-L6-v2-int8"
    assert embedder.dimension == 384
    assert isinstance(embedder.tokenizer, Tokenizer)
    # The tokenizer handed to chunking must count, not pad or truncate.
    assert embedder.tokenizer.truncation is None
    assert embedder.tokenizer.padding is None


def test_it_returns_unit_float32_vectors_of_dimension_384(embedder):
    vectors = embedder.embed(["Hello there.", "Refunds are processed within 14 days.", ""])

    assert vectors.shape == (3, DIMENSION)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_it_embeds_an_empty_list(embedder):
    assert embedder.embed([]).shape == (0, DIMENSION)


def test_a_question_is_closer_to_its_answer_than_to_an_unrelated_sentence(embedder):
    question, answer, unrelated = embedder.embed(
        [
            "What are your business hours?",
            "We are open Monday to Friday 9 to 6",
            "Refunds are processed within 14 days",
        ]
    )

    assert question @ answer > question @ unrelated + 0.1


def test_the_vector_of_a_text_does_not_depend_on_its_batch(embedder):
    texts = ["short", "a much longer sentence that forces padding " * 5, "medium length text here"]

    together = embedder.embed(texts, batch_size=2)
    alone = np.vstack([embedder.embed([text]) for text in texts])

    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_it_truncates_long_texts_to_the_model_window(embedder):
    long_text = "The warranty covers parts and labour for two years. " * 100

    first, second = embedder.embed([long_text, long_text + " Anything past the window is ignored."])

    np.testing.assert_allclose(first, second, atol=1e-5)


def test_get_embedder_returns_one_shared_local_embedder():
    assert get_embedder() is get_embedder("local")


def test_get_embedder_creates_a_single_instance_under_concurrent_calls():
    # A base URL of its own, so this test sees a fresh cache entry.
    barrier = threading.Barrier(8)
    results = []

    def call():
        barrier.wait()
        results.append(get_embedder("openai", base_url="http://concurrency.test/v1", model="m"))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_get_embedder_refuses_an_unknown_provider():
    with pytest.raises(ValueError, match="provider"):
        get_embedder("word2vec")


# OpenAI-compatible API (against a real local HTTP server) ---------------


class FakeEmbeddingsAPI(BaseHTTPRequestHandler):
    """Answers /v1/embeddings; the server's ``script`` lists statuses to return first."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        status = server.script.pop(0) if server.script else 200
        if status != 200:
            self.send_response(status)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        dimension = server.dimension or body.get("dimensions", DIMENSION)
        data = []
        for index, text in enumerate(body["input"]):
            vector = [0.0] * dimension
            vector[len(text) % dimension] = 3.0  # unnormalised on purpose
            data.append({"object": "embedding", "index": index, "embedding": vector})
        data.reverse()  # the API does not promise order; "index" does
        payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEmbeddingsAPI)
    server.requests, server.script, server.dimension = [], [], None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def openai_embedder(api, **kwargs) -> OpenAIEmbedder:
    base_url = f"http://127.0.0.1:{api.server_address[1]}/v1/"
    return OpenAIEmbedder(base_url, "sk-test", "text-embedding-3-small", timeout=5, backoff=0.01, **kwargs)


def test_the_openai_embedder_batches_requests_and_keeps_the_input_order(api):
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]

    vectors = openai_embedder(api).embed(texts, batch_size=2)

    assert vectors.shape == (5, DIMENSION)
    assert vectors.dtype == np.float32
    assert [int(np.argmax(row)) for row in vectors] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert [request["body"]["input"] for request in api.requests] == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    request = api.requests[0]
    assert request["path"] == "/v1/embeddings"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "text-embedding-3-small"
    assert request["body"]["dimensions"] == DIMENSION


def test_the_openai_embedder_retries_rate_limits_and_server_errors(api):
    api.script = [429, 503]

    vectors = openai_embedder(api).embed(["hello"])

    assert vectors.shape == (1, DIMENSION)
    assert len(api.requests) == 3


def test_the_openai_embedder_gives_up_after_its_retries(api):
    api.script = [500] * 10

    with pytest.raises(EmbeddingError, match="HTTP 500"):
        openai_embedder(api, max_retries=2).embed(["hello"])
    assert len(api.requests) == 3


def test_the_openai_embedder_does_not_retry_a_client_error(api):
    api.script = [400]

    with pytest.raises(EmbeddingError, match="HTTP 400"):
        openai_embedder(api).embed(["hello"])
    assert len(api.requests) == 1


def test_the_openai_embedder_refuses_vectors_of_the_wrong_size(api):
    api.dimension = 1536

    with pytest.raises(EmbeddingError, match="shape"):
        openai_embedder(api).embed(["hello"])


def test_the_openai_embedder_can_leave_out_the_dimensions_parameter(api):
    openai_embedder(api, dimensions=None).embed(["hello"])

    assert "dimensions" not in api.requests[0]["body"]


def test_the_openai_embedder_reports_an_unreachable_api():
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    embedder = OpenAIEmbedder("http://127.0.0.1:9/v1", None, "m", timeout=1, max_retries=1, backoff=0.01)

    with pytest.raises(EmbeddingError, match="unreachable"):
        embedder.embed(["hello"])


def test_the_openai_embedder_still_exposes_the_local_tokenizer_for_chunking(api):
    embedder = openai_embedder(api)

    assert embedder.tokenizer.encode("hello world", add_special_tokens=False).tokens == ["hello", "world"]


def test_long_texts_go_in_smaller_batches_short_ones_in_full_batches():
    from knowledge.embeddings import MAX_BATCH_ATTENTION, MAX_SEQUENCE_TOKENS, _bounded_batches

    lengths = [20] * 40 + [MAX_SEQUENCE_TOKENS] * 20
    batches = _bounded_batches(list(range(60)), lengths, batch_size=32)

    assert [len(batch) for batch in batches] == [32, 8, 8, 8, 4]
    assert sorted(index for batch in batches for index in batch) == list(range(60))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) ** 2 <= MAX_BATCH_ATTENTION or len(batch) == 32


def test_embedding_full_length_texts_leaves_the_process_near_half_a_gigabyte():
    # Before: onnxruntime's arena kept the buffers of a 32 × 256-token batch, ~1.5 GB resident for good.
    # VmHWM, not getrusage's ru_maxrss: on Linux ru_maxrss survives exec, so it would count the forked
    # test process's own memory (hundreds of MB once other tests have loaded models) as the child's peak.
    script = (
        "import re; from knowledge.embeddings import LocalEmbedder; "
        "LocalEmbedder(threads=2).embed([' '.join(['warranty refund'] * 150)] * 32, batch_size=32); "
        "status = open('/proc/self/status').read(); "
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) // 1024)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=BASE_DIR)
    peak_mb = int(result.stdout.split()[-1])
    assert peak_mb < 700, peak_mb  # about 520 MB now
