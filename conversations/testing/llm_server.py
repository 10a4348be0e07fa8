"""An OpenAI-compatible chat completions server on loopback, for tests and benchmarks.

It implements `POST /v1/chat/completions` (plain and `stream: true`, with
`usage` in the answer and, when asked with `stream_options.include_usage`, in
a last chunk) and `GET /v1/models`. It records every request body and can be
scripted per request: fail with an HTTP status, stall (before the first byte
or after some tokens), wait a fixed delay before answering, and wait between
streamed tokens. It notices when a client closes the connection before the
end of a stream (`disconnects`).

    with LLMStub(reply="Hello there.", token_delay=0.01) as stub:
        stub.fail(503, times=1)          # the next request gets a 503
        ... LLM_BASE_URL=stub.base_url ...
        assert stub.requests[-1]["messages"][-1]["content"] == "hi"

Run it on its own (for a benchmark): `python -m conversations.testing.llm_server --port 8100 --delay 0.05`.
It depends on the standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_PATTERN = re.compile(r"\s*\S+")


def default_reply(body: dict) -> str:
    """A deterministic answer that says what it answered."""
    question = ""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            question = message_text(message)
            break
    return f"Stub answer to: {question}"


def message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def count_words(text: str) -> int:
    return len(text.split())


@dataclass
class Action:
    """What to do with one request instead of answering normally."""

    status: int | None = None  # fail with this HTTP status
    message: str = "scripted failure"
    retry_after_ms: int | None = None
    stall: float = 0.0  # seconds to stall
    stall_after_tokens: int = 0  # 0: before the response starts; n: after n streamed tokens


@dataclass
class StubStats:
    requests: list[dict] = field(default_factory=list)
    disconnects: int = 0
    completed_streams: int = 0


class LLMStub:
    """A scriptable OpenAI-compatible server on a free loopback port (threaded)."""

    def __init__(
        self,
        *,
        reply: str | Callable[[dict], str] = default_reply,
        delay: float = 0.0,
        token_delay: float = 0.0,
        report_usage: bool = True,
        model: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.reply = reply
        self.delay = delay
        self.token_delay = token_delay
        self.report_usage = report_usage
        self.model = model
        self._actions: list[Action] = []
        self._lock = threading.Lock()
        self._stats = StubStats()
        self._stopping = threading.Event()
        self._disconnected = threading.Condition(self._lock)
        self._server = _Server((host, port), _Handler)
        self._server.stub = self
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (ends in /v1), as `LLM_BASE_URL` or `OpenAI(base_url=...)` expect."""
        return f"http://{self._server.server_address[0]}:{self.port}/v1"

    def start(self) -> LLMStub:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="llm-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> LLMStub:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- scripting --------------------------------------------------------------

    def fail(
        self, status: int, *, times: int = 1, message: str = "scripted failure", retry_after_ms: int | None = None
    ):
        """The next `times` requests are answered with `status` and an OpenAI error body."""
        with self._lock:
            self._actions.extend(
                Action(status=status, message=message, retry_after_ms=retry_after_ms) for _ in range(times)
            )

    def stall(self, seconds: float, *, times: int = 1, after_tokens: int = 0):
        """The next `times` requests go silent for `seconds` (before answering, or after `after_tokens` tokens)."""
        with self._lock:
            self._actions.extend(Action(stall=seconds, stall_after_tokens=after_tokens) for _ in range(times))

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._stats.requests)

    @property
    def disconnects(self) -> int:
        with self._lock:
            return self._stats.disconnects

    @property
    def completed_streams(self) -> int:
        with self._lock:
            return self._stats.completed_streams

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """Block until some client closed a stream early; False on time-out."""
        with self._disconnected:
            return self._disconnected.wait_for(lambda: self._stats.disconnects > 0, timeout)

    # --- used by the handler --------------------------------------------------------

    def _next_action(self, body: dict) -> Action | None:
        with self._lock:
            self._stats.requests.append(body)
            return self._actions.pop(0) if self._actions else None

    def _record_disconnect(self) -> None:
        with self._disconnected:
            self._stats.disconnects += 1
            self._disconnected.notify_all()

    def _record_completed_stream(self) -> None:
        with self._lock:
            self._stats.completed_streams += 1

    def _answer_text(self, body: dict) -> str:
        return self.reply(body) if callable(self.reply) else self.reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    stub: LLMStub


class ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args):
        pass

    # --- routing ------------------------------------------------------------------

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            model = self.server.stub.model or "stub-model"
            self._send_json(200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "stub"}]})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        stub = self.server.stub
        action = stub._next_action(body)
        try:
            if action and action.stall and action.stall_after_tokens == 0:
                self._wait(action.stall)
            if stub.delay:
                self._wait(stub.delay)
            if action and action.status:
                headers = {"retry-after-ms": str(action.retry_after_ms)} if action.retry_after_ms is not None else {}
                self._send_json(
                    action.status,
                    {"error": {"message": action.message, "type": "server_error", "code": None, "param": None}},
                    headers,
                )
                return
            if body.get("stream"):
                self._stream(body, action)
            else:
                self._complete(body)
        except ClientGone:
            stub._record_disconnect()
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            stub._record_disconnect()
            self.close_connection = True

    # --- answers -------------------------------------------------------------------

    def _usage(self, body: dict, completion_tokens: int) -> dict:
        prompt_tokens = sum(count_words(message_text(m)) for m in body.get("messages") or [])
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def _complete(self, body: dict) -> None:
        stub = self.server.stub
        text = stub._answer_text(body)
        tokens = TOKEN_PATTERN.findall(text)
        if stub.token_delay:
            self._wait(stub.token_delay * len(tokens))
        answer = {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": stub.model or body.get("model") or "stub-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }
        if stub.report_usage:
            answer["usage"] = self._usage(body, len(tokens))
        self._send_json(200, answer)

    def _stream(self, body: dict, action: Action | None) -> None:
        stub = self.server.stub
        text = stub._answer_text(body)
        tokens = TOKEN_PATTERN.findall(text)
        model = stub.model or body.get("model") or "stub-model"
        chunk_id = f"chatcmpl-{time.monotonic_ns()}"
        created = int(time.time())

        def chunk(delta: dict, finish_reason=None) -> dict:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._send_event(chunk({"role": "assistant", "content": ""}))
        for index, token in enumerate(tokens):
            if action and action.stall and action.stall_after_tokens == index and index > 0:
                self._wait(action.stall)
            if stub.token_delay and index > 0:
                self._wait(stub.token_delay)
            self._send_event(chunk({"content": token}))
        self._send_event(chunk({}, "stop"))
        if stub.report_usage and (body.get("stream_options") or {}).get("include_usage"):
            self._send_event(
                {
                    "id": chunk_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": self._usage(body, len(tokens)),
                }
            )
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")
        stub._record_completed_stream()

    # --- plumbing ---------------------------------------------------------------------

    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_event(self, payload: dict) -> None:
        self._send_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _wait(self, seconds: float) -> None:
        """Sleep, but notice a client that hangs up (and a server that stops) meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.server.stub._stopping.is_set():
                return
            readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.05))
            if readable:
                try:
                    peeked = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    peeked = b""
                if not peeked:
                    raise ClientGone
                # A pipelined next request: nothing to do until we answer this one.
                time.sleep(min(remaining, 0.01))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between streamed tokens")
    parser.add_argument("--reply", default=None, help="fixed answer text (default: echo the question)")
    args = parser.parse_args(argv)
    stub = LLMStub(
        reply=args.reply if args.reply is not None else default_reply,
        delay=args.delay,
        token_delay=args.token_delay,
        host=args.host,
        port=args.port,
    )
    stub.start()
    print(stub.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stub.stop()


if __name__ == "__main__":
    main()
