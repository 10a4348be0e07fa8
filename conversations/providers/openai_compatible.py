"""Any OpenAI-compatible server (vLLM or Ollama serving gpt-oss-120b, llama.cpp, OpenAI) via the official SDK.

Time-outs: `LLM_TIMEOUT_SECONDS` bounds the connection and every read, so a
server that stalls mid-stream is noticed too. Retries: the SDK retries 408,
409, 429, 5xx, time-outs and connection errors `LLM_MAX_RETRIES` times with
exponential backoff and jitter (0.5 s doubling, at most 8 s), honouring
`Retry-After` / `retry-after-ms`; a stream is only retried before its first
byte. What still fails becomes 502 `upstream_error` or 504 `upstream_timeout`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

import openai

from bothero.errors import UpstreamError
from conversations.providers.base import (
    Completion,
    Grounding,
    ProviderRequest,
    StreamPiece,
    UpstreamTimeoutError,
    Usage,
)

PLACEHOLDER_API_KEY = "not-needed"  # local servers (vLLM, Ollama, llama.cpp) accept any key


def translate_error(exc: openai.OpenAIError, timeout: float) -> UpstreamError:
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeoutError(f"The language model did not answer within {timeout:g} seconds.")
    if isinstance(exc, openai.APIStatusError):
        return UpstreamError(f"The language model server answered HTTP {exc.status_code}.")
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError("The language model server could not be reached.")
    return UpstreamError("The language model server failed while answering.")


def _usage(raw) -> Usage | None:
    if raw is None:
        return None
    return Usage(prompt_tokens=raw.prompt_tokens or 0, completion_tokens=raw.completion_tokens or 0)


class OpenAICompatibleProvider:
    name = "openai"
    cites_passages = True  # the model cites the prompt's numbered passages (conversations.citations)

    def __init__(self, *, base_url: str | None, api_key: str, model: str, timeout: float, max_retries: int):
        self.base_url = base_url or None
        self.api_key = api_key or PLACEHOLDER_API_KEY
        self.forced_model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=timeout, max_retries=max_retries
        )
        # An async client's connection pool belongs to the event loop that created it.
        self._async_clients: dict[int, tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI]] = {}
        self._lock = threading.Lock()

    def model_for(self, bot) -> str:
        return self.forced_model or bot.model

    def ground(self, *, query: str, passages: Sequence, context: str = "", query_vector=None) -> Grounding:
        # The model reads every answerable passage and says itself which ones answer (citation markers).
        return Grounding(passages=list(passages))

    def _arguments(self, request: ProviderRequest) -> dict:
        return {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }

    def complete(self, request: ProviderRequest) -> Completion:
        try:
            response = self._client.chat.completions.create(**self._arguments(request))
        except openai.OpenAIError as exc:
            raise translate_error(exc, self.timeout) from exc
        if not response.choices:
            raise UpstreamError("The language model server returned no answer.")
        choice = response.choices[0]
        return Completion(
            content=choice.message.content or "",
            model=response.model or request.model,
            usage=_usage(response.usage),
            finish_reason=choice.finish_reason or "stop",
        )

    def _async_client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async_clients.get(id(loop))
            if entry is None or entry[0] is not loop:
                for key, (old_loop, _) in list(self._async_clients.items()):
                    if old_loop.is_closed():
                        del self._async_clients[key]
                entry = (
                    loop,
                    openai.AsyncOpenAI(
                        base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=self.max_retries
                    ),
                )
                self._async_clients[id(loop)] = entry
            return entry[1]

    async def astream(self, request: ProviderRequest) -> AsyncIterator[StreamPiece]:
        client = self._async_client()
        try:
            stream = await client.chat.completions.create(
                **self._arguments(request), stream=True, stream_options={"include_usage": True}
            )
        except openai.OpenAIError as exc:
            raise translate_error(exc, self.timeout) from exc
        usage = None
        model = request.model
        finish_reason = "stop"
        try:
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                    if choice.delta and choice.delta.content:
                        yield StreamPiece(delta=choice.delta.content)
        except openai.OpenAIError as exc:
            raise translate_error(exc, self.timeout) from exc
        finally:
            # Also on cancellation (the client went away): closing the response
            # drops the connection, which stops the upstream generation.
            await stream.close()
        yield StreamPiece(usage=usage, model=model, finish_reason=finish_reason)
