"""Follow-up questions: "and on weekends?" only makes sense with the question before it.

A question that looks like it continues the conversation — it opens with a
continuation ("and", "what about", "also"…), refers back with a pronoun ("it",
"that", "those"…), or is too short to stand alone (one content word)
— is searched twice: on its own, and as a standalone query made of the
customer's previous question(s) followed by it. The two result lists are fused
(each passage keeps its best score, see `passages_fuse`), and the extractive
provider scores sentences with the earlier question as context, the new
question's own words counting double. A question that does not look like a
follow-up is searched on its own, as before (no extra work on the common path).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from knowledge.sentences import content_words

#: How many of the customer's previous messages make the standalone query.
CONTEXT_TURNS = 1
#: A question with at most this many content words cannot stand alone ("weekends?").
SHORT_QUESTION_TERMS = 1

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CONTINUATIONS = (
    "and", "or", "but", "also", "plus", "so", "then", "what about", "how about", "what if", "same", "ok and",
    "okay and", "and what", "and how", "and if", "as for", "except",
)  # fmt: skip
_ANAPHORA = frozenset(
    "it its it's itself that those these they them their theirs there he she him her his one ones same else "
    "either neither former latter".split()
)


def looks_like_follow_up(question: str) -> bool:
    """Whether `question` may depend on the conversation before it (see the module's docstring)."""
    text = question.strip().lower()
    words = _WORD.findall(text)
    if not words:
        return False
    joined = " ".join(words)
    if any(joined == start or joined.startswith(start + " ") for start in _CONTINUATIONS):
        return True
    if _ANAPHORA.intersection(words):
        return True
    return len(content_words(question)) <= SHORT_QUESTION_TERMS


def follow_up_context(question: str, earlier_user_messages: Sequence[str]) -> str:
    """The earlier question(s) `question` continues (oldest first), or "" when it stands alone.

    `earlier_user_messages`: the customer's previous messages, oldest first.
    """
    earlier = [text.strip() for text in earlier_user_messages if text and text.strip()]
    if not earlier or not looks_like_follow_up(question):
        return ""
    return " ".join(earlier[-CONTEXT_TURNS:])


def passages_fuse(*rankings: Sequence, top_k: int) -> list:
    """One list from several searches' results: each chunk once, with its best score, best first."""
    best: dict[str, object] = {}
    for ranking in rankings:
        for passage in ranking:
            kept = best.get(passage.chunk_id)
            if kept is None or passage.score > kept.score:
                best[passage.chunk_id] = passage
    return sorted(best.values(), key=lambda passage: -passage.score)[:top_k]
