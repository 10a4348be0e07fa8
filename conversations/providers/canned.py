"""A provider that gives a fixed text verbatim: the bot's handoff notice, a curated answer.

It goes through the same steps as a model's answer (stored, streamed as
`message.start` / `message.delta` / `message.completed`, `message.created`),
so clients need no special case; it uses no tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from conversations.providers.base import Completion, Grounding, ProviderRequest, StreamPiece, Usage

NO_TOKENS = Usage(prompt_tokens=0, completion_tokens=0)


class CannedProvider:
    name = "canned"
    cites_passages = False

    def __init__(self, *, text: str, model: str):
        self.text = text
        self.model = model

    def model_for(self, bot) -> str:
        return self.model

    def ground(self, *, query: str, passages: Sequence, context: str = "", query_vector=None) -> Grounding:
        return Grounding(passages=list(passages))

    def complete(self, request: ProviderRequest) -> Completion:
        return Completion(content=self.text, model=self.model, usage=NO_TOKENS)

    async def astream(self, request: ProviderRequest) -> AsyncIterator[StreamPiece]:
        yield StreamPiece(delta=self.text)
        yield StreamPiece(model=self.model, usage=NO_TOKENS, finish_reason="stop")
