"""What every chat provider takes and gives back, and the errors it may raise."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bothero.errors import UpstreamError


class UpstreamTimeoutError(UpstreamError):
    """The language model server did not answer in time (504)."""

    status_code = 504
    default_code = "upstream_timeout"


@dataclass(frozen=True)
class ProviderRequest:
    model: str
    messages: list[dict]  # OpenAI-style [{"role": ..., "content": ...}], system prompt first
    temperature: float
    max_tokens: int
    query: str  # the user's message, as typed
    passages: Sequence  # knowledge.selectors.Passage, best first: the answer's sources
    fallback_message: str
    grounded_answer: str | None = None  # an answer already decided by `ChatProvider.ground` (extractive quotes)


@dataclass(frozen=True)
class Grounding:
    """What a provider will answer from: the passages (shown as the answer's sources) and, when the provider
    decides the answer itself without a model (extractive), that answer (None: the fallback message)."""

    passages: list
    answer: str | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    usage: Usage | None  # None: the provider reported none; the engine counts tokens itself
    finish_reason: str = "stop"


@dataclass(frozen=True)
class StreamPiece:
    """A token delta, or (last) the stream's usage, model and finish reason."""

    delta: str = ""
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None


class ChatProvider(Protocol):
    name: str
    cites_passages: bool  # whether answers cite the prompt's passages as [1], [2]… (conversations.citations)

    def model_for(self, bot) -> str:
        """The model name this provider will use for `bot`."""

    def ground(self, *, query: str, passages: Sequence, context: str = "", query_vector=None) -> Grounding:
        """Choose, among the answerable retrieved passages (best first), the ones the answer may use.

        `context`: the earlier question(s) a follow-up depends on ("" for a standalone one);
        `query_vector`: the question's embedding when already computed.
        """

    def complete(self, request: ProviderRequest) -> Completion:
        """Answer in one piece. Raises UpstreamError / UpstreamTimeoutError."""

    def astream(self, request: ProviderRequest) -> AsyncIterator[StreamPiece]:
        """Answer token by token (an async generator); the last piece carries usage when known."""
