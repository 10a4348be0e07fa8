"""The honest "I don't know": which retrieved passages an answer may use, on the search's calibrated score.

Every passage `knowledge.selectors.search` returns carries a `score` in [0, 1]
(the one search results and `sources` are ordered by and show). A passage
can answer a question only when its score reaches the bot's answer threshold:

    threshold = max(bot.retrieval["min_score"], CHAT_ANSWER_MIN_SCORE)

`CHAT_ANSWER_MIN_SCORE` is the deployment's threshold, chosen on the quality
benchmark's tuning part (bench/quality.py) so that almost every unanswerable
question is refused while almost no answerable one is; a bot's own
`retrieval.min_score` (default 0) can only make it stricter. When no passage
reaches it, no passage is shown as a source and the bot answers with its
fallback message: the extractive provider says it as is, and the `openai`
provider's model is given no passages and told to say it. The extractive
provider then also asks each quoted sentence for evidence of its own
(`conversations.providers.extractive`).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings


def answer_min_score(bot) -> float:
    """The score a passage must reach to be used in `bot`'s answers."""
    bot_min = float((bot.retrieval or {}).get("min_score") or 0.0)
    return max(bot_min, settings.CHAT_ANSWER_MIN_SCORE)


def answerable_passages(*, bot, passages: Sequence) -> list:
    """The passages (best first) good enough to answer from; empty: answer with the fallback message."""
    threshold = answer_min_score(bot)
    return [passage for passage in passages if passage.score >= threshold]
