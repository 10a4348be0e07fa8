"""Replay of the quality benchmark's chat steps after retrieval: `python bench/quality_replay.py [--dump]`.

A lever on the answer (the answerability cut, the follow-up fusion, the
extractive provider's sentence choice) changes nothing that the search
returns, so it need not re-run `bench/quality.py` (minutes) to be measured:

1. `python bench/quality.py --keep` leaves the ingested database behind;
2. `python bench/quality_replay.py --dump` searches it once for every question
   the chat part of the benchmark asks (the re-worded questions, the
   unanswerable ones, both turns of every conversation and a follow-up's
   standalone query) and keeps each one's scored candidates and embedding in
   `var/quality_candidates.pkl`;
3. `python bench/quality_replay.py` then replays, in about a minute (most of
   it embedding the passages' sentences once), what
   `conversations.services.reply_prepare` does after retrieval with the code
   as it is now: the follow-up context and fusion (`conversations.followups`),
   the bot's top_k, the answer threshold (`conversations.answerability`) and
   the provider's `ground` (the extractive provider, or what `LLM_PROVIDER`
   names if it decides answers itself); and prints the benchmark's answer
   figures for each part (answer correct, refused unanswerable, false
   refusals, follow-ups) and the answers' mean length in words.

On the same database it gives `bench/quality.py`'s pipeline figures exactly
(checked on 2026-11-30 at `007a477`). Choose on the tuning part; run the
benchmark itself for the figures you report. A change to the search (ranking,
scores, chunking) needs a new `--dump`; a new `bench/quality.py` run
replaces the kept database.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
os.environ["BOTHERO_TEST_DB_NAME"] = "bench_quality"

DUMP = ROOT / "var" / "quality_candidates.pkl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", action="store_true", help="search the kept database (bench/quality.py --keep)")
    parser.add_argument("--file", default=str(DUMP), help="where the candidates are kept")
    args = parser.parse_args()

    import django

    django.setup()
    if args.dump:
        dump(Path(args.file))
    replay(Path(args.file))
    return 0


def dump(path: Path) -> None:
    """Every query the benchmark's chat part searches, with its candidates and embedding, into `path`."""
    from django.test.utils import setup_databases

    from accounts.models import Tenant
    from bench.quality import TENANT_NAME, load_follow_ups, load_questions, load_unanswerable
    from bots.models import Bot
    from conversations.followups import follow_up_context
    from knowledge.models import Document
    from knowledge.selectors import query_embeddings, search_candidates

    setup_databases(verbosity=0, interactive=False, keepdb=True, serialized_aliases=[])
    tenant = Tenant.objects.filter(name=TENANT_NAME).first()
    if tenant is None:
        raise SystemExit("No kept benchmark database: run `python bench/quality.py --keep` first.")
    bot = Bot.objects.get(tenant=tenant)
    queries = [question.reworded for question in load_questions()]
    queries += [text for text, _part in load_unanswerable()]
    for follow_up in load_follow_ups():
        queries += [follow_up.first, follow_up.second]
        context = follow_up_context(follow_up.second, [follow_up.first])
        if context:
            queries.append(f"{context} {follow_up.second}")
    searched = {}
    for query in dict.fromkeys(queries):
        embedding = query_embeddings(query)
        # Every candidate, in the search's order: the bot's top_k and min_score are applied at replay.
        candidates = search_candidates(tenant=tenant, bot=bot, query=query, top_k=1, query_vector=embedding)
        searched[query] = (candidates, embedding.vector)
    path.parent.mkdir(exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(
            {
                "searched": searched,
                "retrieval": bot.retrieval,
                "fallback_message": bot.fallback_message,
                "chapters": dict(Document.objects.filter(bot=bot).values_list("public_id", "metadata__chapter")),
            },
            handle,
        )
    print(f"{len(searched)} queries searched into {path}")


def replay(path: Path) -> None:
    from types import SimpleNamespace

    from bench.quality import load_follow_ups, load_questions, load_unanswerable, normalise
    from conversations.answerability import answerable_passages
    from conversations.followups import follow_up_context, passages_fuse
    from conversations.providers import get_provider

    with open(path, "rb") as handle:
        kept = pickle.load(handle)  # our own file, written by --dump
    searched = kept["searched"]
    bot = SimpleNamespace(retrieval=kept["retrieval"], fallback_message=kept["fallback_message"])
    top_k = int((bot.retrieval or {}).get("top_k", 5))
    min_score = float((bot.retrieval or {}).get("min_score", 0.0))
    provider = get_provider()

    def search(query: str) -> list:
        return [passage for passage in searched[query][0] if passage.score >= min_score][:top_k]

    def answer(question: str, earlier: tuple[str, ...] = ()) -> str | None:
        """The answer `reply_prepare` would ground, or None for the fallback message."""
        context = follow_up_context(question, list(earlier))
        passages = search(question)
        if context:
            passages = passages_fuse(passages, search(f"{context} {question}"), top_k=max(len(passages), 1))
        grounding = provider.ground(
            query=question,
            passages=answerable_passages(bot=bot, passages=passages),
            context=context,
            query_vector=searched[question][1],
        )
        return grounding.answer

    def holds(content: str | None, phrase: str) -> bool:
        return content is not None and normalise(phrase) in normalise(content)

    tallies = {part: {"correct": [], "false_refusals": [], "refused": [], "follow_ups": [], "words": []}
               for part in ("held-out", "tuning")}  # fmt: skip
    for question in load_questions():
        content = answer(question.reworded)
        tally = tallies[question.part]
        tally["correct"].append(holds(content, question.phrase))
        tally["false_refusals"].append(content is None)
        if content is not None:
            tally["words"].append(len(content.split()))
    for text, part in load_unanswerable():
        tallies[part]["refused"].append(answer(text) is None)
    for follow_up in load_follow_ups():
        tallies[follow_up.part]["follow_ups"].append(
            holds(answer(follow_up.second, (follow_up.first,)), follow_up.phrase)
        )

    print(
        f"{'part':10s} {'answer ok':>9s} {'refused unans.':>14s} {'false refusals':>14s} {'follow-up':>9s} {'words':>6s}"
    )
    for part, tally in tallies.items():
        shares = [sum(tally[key]) / len(tally[key]) for key in ("correct", "refused", "false_refusals", "follow_ups")]
        words = sum(tally["words"]) / max(len(tally["words"]), 1)
        print(f"{part:10s} {shares[0]:9.3f} {shares[1]:14.3f} {shares[2]:14.3f} {shares[3]:9.3f} {words:6.0f}")


if __name__ == "__main__":
    sys.exit(main())
