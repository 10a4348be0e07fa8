"""The prompt: bot instructions, retrieved passages numbered [1], [2]… (see conversations.citations), history
within a token budget, the question.

Tokens are counted with the embedding model's tokenizer (all-MiniLM-L6-v2's
WordPiece, from knowledge.embeddings). It is not the chat model's tokenizer,
but it is a real one: counts are close for English text and never guessed
from characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

#: Tokens a chat message costs besides its content (role and separators), as in OpenAI's accounting.
MESSAGE_OVERHEAD_TOKENS = 4

DEFAULT_INSTRUCTIONS = "You are a helpful assistant for this business's customers."
GROUNDING_RULES = (
    "Answer only from the numbered knowledge passages below, never from anything else you know. "
    "Cite every passage you use by its number in square brackets, for example [1] or [1][3]. "
    'The customer\'s last message may continue the conversation ("and on weekends?"): read it with the '
    "messages before it. "
    'If the passages do not contain the answer, reply exactly with: "{fallback}" and nothing else.'
)
NO_PASSAGES = "No knowledge passages matched this question."


@lru_cache(maxsize=1)
def _tokenizer():
    from knowledge.embeddings import load_tokenizer

    return load_tokenizer()


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


def count_prompt_tokens(messages: Iterable[dict]) -> int:
    return sum(count_tokens(message["content"]) + MESSAGE_OVERHEAD_TOKENS for message in messages)


def history_within_budget(history: Sequence[dict], budget: int) -> list[dict]:
    """The most recent messages of `history` (oldest first) whose tokens fit in `budget`.

    Whole messages only, newest kept first: the oldest are dropped when the
    conversation grows past the budget.
    """
    kept: list[dict] = []
    used = 0
    for message in reversed(history):
        cost = count_tokens(message["content"]) + MESSAGE_OVERHEAD_TOKENS
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    return kept


def format_passage(passage, number: int) -> str:
    """A passage as the model reads it: its citation marker, where it comes from, its text."""
    label = f"[{number}] {passage.title}"
    if passage.heading:
        label += f" — {passage.heading}"
    if passage.page:
        label += f" (page {passage.page})"
    return f"{label}\n{passage.text}"


def system_prompt(*, instructions: str, fallback_message: str, passages: Sequence, extra: Sequence[str] = ()) -> str:
    parts = [instructions.strip() or DEFAULT_INSTRUCTIONS, *[text.strip() for text in extra if text.strip()]]
    parts.append(GROUNDING_RULES.format(fallback=fallback_message.strip()))
    knowledge = (
        "\n\n".join(format_passage(passage, number) for number, passage in enumerate(passages, 1))
        if passages
        else NO_PASSAGES
    )
    parts.append(f"Knowledge passages:\n\n{knowledge}")
    return "\n\n".join(parts)


def build_messages(
    *,
    instructions: str,
    fallback_message: str,
    passages: Sequence,
    history: Sequence[dict],
    user_message: str,
    extra_instructions: Sequence[str] = (),
) -> list[dict]:
    """OpenAI-style messages: one system message, the kept history, then the user's message."""
    system = system_prompt(
        instructions=instructions, fallback_message=fallback_message, passages=passages, extra=extra_instructions
    )
    return [
        {"role": "system", "content": system},
        *({"role": m["role"], "content": m["content"]} for m in history),
        {"role": "user", "content": user_message},
    ]
