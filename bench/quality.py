"""Answer-quality benchmark: `python bench/quality.py [--reuse] [--keep] [--modes fulltext,vector,hybrid,pipeline]`.

Measures how well the product finds and answers from a real documentation set
that nobody on this team wrote: GNOME Help (bench/quality_corpus.py: 249 topic
pages in 36 chapters, of the Debian package gnome-user-docs, CC-BY-SA 3.0,
committed under bench/data/gnome-help/). A question's answer is located by its
page (hence its chapter, the uploaded document) and a phrase the passage must
contain. In one run it

1. uploads every chapter (its pages) as an HTML file through `knowledge.services.document_create_from_file`
   and ingests it through the ingestion task (Celery, eager: the same code a worker
   runs: parse in a subprocess, chunk, embed, write) into a throw-away database
   (`bench_quality`) of the embedded PostgreSQL; reports ingestion chunks/s;
2. asks every question (bench/data/quality_questions.tsv: 174 questions, each with
   the page and a phrase that the answering passage must contain, each asked
   verbatim, in the manual's words, and re-worded as a customer would ask it)
   through `knowledge.selectors.search_ranked` for each ranker: `fulltext` (BM25-
   style full text only), `vector` (embeddings only), `rrf` (both, fused by
   reciprocal rank: the hybrid search before the relevance model) and `pipeline`
   (`knowledge.selectors.search`, what chat uses):
   recall@1, recall@5, MRR@10 and search p50 (query embedding included);
3. answers with the chat code and the extractive provider: for `pipeline` through
   `conversations.services.chat_reply_start` + `reply_generate` (the chat service: storing, retrieval, the provider,
   the bot's fallback), for the single rankers through the same provider on that
   ranker's top 5: answer text correct (it contains the phrase), refusals (the bot's
   fallback message) on the 35 questions the pages cannot answer
   (bench/data/quality_unanswerable.txt) and false refusals on answerable ones,
   and follow-up accuracy on 25 two-turn conversations
   (bench/data/quality_conversations.tsv) whose second question only makes sense
   after the first: the second answer must contain the phrase. The single rankers
   see the second question alone (as today's retrieval does); `pipeline` answers
   it inside its conversation.

Every item is in a fixed part, by a hash of its text: held-out (about 40 %) or
tuning. Figures are printed for each part; the held-out ones are the result,
the tuning part is what settings may be chosen on.

`--reuse` keeps the ingested database between runs (`--keep` leaves it behind):
ingestion is then not re-measured. Writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
os.environ["BOTHERO_TEST_DB_NAME"] = "bench_quality"

from bench.common import results_file  # noqa: E402

DATA = ROOT / "bench" / "data"
MODES = ("fulltext", "vector", "rrf", "pipeline")
MODE_LABELS = {
    "fulltext": "BM25 (full text) only",
    "vector": "vectors only",
    "rrf": "hybrid, RRF (before)",
    "pipeline": "pipeline (search)",
}
TOP_K = 10  # passages asked for: MRR@10; recall@1/@5 read off the same list
ANSWER_TOP_K = 5  # passages a single ranker hands to the provider (the bot's default top_k)
TENANT_NAME = "Quality bench"
HELD_OUT_SHARE = 2  # of 5 hash buckets


def part_of(key: str) -> str:
    """The fixed part of an item: held-out for 2 of 5 hash buckets (about 40 %), tuning otherwise."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 5
    return "held-out" if bucket < HELD_OUT_SHARE else "tuning"


def normalise(text: str) -> str:
    """Case, curly quotes and white space do not matter when a phrase is looked for."""
    for curly, plain in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"')):
        text = text.replace(curly, plain)
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Question:
    id: str
    doc: str
    phrase: str
    verbatim: str
    reworded: str
    part: str


@dataclass(frozen=True)
class FollowUp:
    id: str
    first: str
    second: str
    doc: str
    phrase: str
    part: str


def load_questions() -> list[Question]:
    with open(DATA / "quality_questions.tsv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    questions = []
    for row in rows:
        key = f"{row['doc']}|{row['phrase']}"
        questions.append(
            Question(
                id=key,
                doc=row["doc"],
                phrase=row["phrase"],
                verbatim=row["verbatim"],
                reworded=row["reworded"],
                part=part_of(key),
            )
        )
    return questions


def load_unanswerable() -> list[tuple[str, str]]:
    lines = (DATA / "quality_unanswerable.txt").read_text(encoding="utf-8").splitlines()
    return [(line, part_of(line)) for line in lines if line.strip()]


def load_follow_ups() -> list[FollowUp]:
    with open(DATA / "quality_conversations.tsv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        FollowUp(
            id=f"{row['first']}|{row['second']}",
            first=row["first"],
            second=row["second"],
            doc=row["doc"],
            phrase=row["phrase"],
            part=part_of(f"{row['first']}|{row['second']}"),
        )
        for row in rows
    ]


@dataclass
class Tally:
    """Outcomes of one mode on one part."""

    ranks: dict[str, list[int | None]] = field(default_factory=lambda: {"verbatim": [], "reworded": []})
    answers_correct: list[bool] = field(default_factory=list)
    false_refusals: list[bool] = field(default_factory=list)
    refusals: list[bool] = field(default_factory=list)
    follow_ups: list[bool] = field(default_factory=list)

    def summary(self) -> dict:
        out = {}
        for variant, ranks in self.ranks.items():
            n = len(ranks) or 1
            out[variant] = {
                "questions": len(ranks),
                "recall@1": round(sum(1 for rank in ranks if rank == 1) / n, 3),
                "recall@5": round(sum(1 for rank in ranks if rank is not None and rank <= 5) / n, 3),
                "mrr@10": round(sum(1 / rank for rank in ranks if rank is not None) / n, 3),
            }

        def share(values: list[bool]) -> float | None:
            return round(sum(values) / len(values), 3) if values else None

        out["answer_correct"] = share(self.answers_correct)
        out["false_refusals"] = share(self.false_refusals)
        out["refusals_on_unanswerable"] = share(self.refusals)
        out["follow_up_accuracy"] = share(self.follow_ups)
        out["counts"] = {
            "answerable": len(self.answers_correct),
            "unanswerable": len(self.refusals),
            "follow_ups": len(self.follow_ups),
        }
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES))
    parser.add_argument("--reuse", action="store_true", help="reuse the ingested database of a --keep run")
    parser.add_argument("--keep", action="store_true", help="leave the database behind for --reuse")
    parser.add_argument("--no-chat", action="store_true", help="retrieval figures only")
    parser.add_argument(
        "--fit", action="store_true", help="fit knowledge.selectors' relevance model on the tuning part, print it, stop"
    )
    parser.add_argument("--out", default=str(results_file("quality.json")))
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")

    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings, setup_databases, teardown_databases

    from bench.quality_corpus import chapter_of, corpus
    from bothero.celery import app as celery_app

    questions = load_questions()
    unanswerable = load_unanswerable()
    follow_ups = load_follow_ups()
    parts = ("held-out", "tuning")
    print(
        f"Data: {len(questions)} questions (x2: verbatim, re-worded), {len(unanswerable)} unanswerable, "
        f"{len(follow_ups)} two-turn conversations; held-out: "
        f"{sum(q.part == 'held-out' for q in questions)} / {sum(u[1] == 'held-out' for u in unanswerable)} / "
        f"{sum(f.part == 'held-out' for f in follow_ups)}"
    )

    old_config = setup_databases(verbosity=0, interactive=False, keepdb=args.reuse or args.keep, serialized_aliases=[])
    media = tempfile.mkdtemp(prefix="bench-quality-")
    celery_app.conf.task_always_eager = True  # the ingestion task runs here, as a worker would run it
    try:
        # The ingestion task runs inline (eager), not on a thread after the upload, with or without Redis.
        with override_settings(MEDIA_ROOT=media, KNOWLEDGE_INGEST_IN_THREAD=False):
            from accounts.models import Tenant
            from bothero.testing.factories import BotFactory, TenantFactory
            from conversations import services as chat_services
            from conversations.answerability import answerable_passages
            from conversations.providers import ProviderRequest, get_provider
            from knowledge import services
            from knowledge.conf import embedder_warm_up, embedding_model_name
            from knowledge.models import Chunk, Document
            from knowledge.selectors import search, search_ranked

            pages = corpus()
            tenant = Tenant.objects.filter(name=TENANT_NAME).first() if args.reuse else None
            ingestion = None
            if tenant is None:
                Tenant.objects.filter(name=TENANT_NAME).delete()
                tenant = TenantFactory(name=TENANT_NAME)
                bot = BotFactory(tenant=tenant, name="GNOME Help")
                embedder_warm_up()  # both models of the ensemble loaded before the clock starts
                started = time.perf_counter()
                for chapter, title, html in pages:
                    document = services.document_create_from_file(
                        tenant=tenant,
                        bot=bot,
                        data=html.encode(),
                        filename=f"{chapter}.html",
                        title=title,
                        metadata={"chapter": chapter},
                    )
                    document.refresh_from_db()
                    if document.status != "ready":
                        raise SystemExit(f"{chapter}: ingestion ended {document.status}: {document.error_message}")
                elapsed = time.perf_counter() - started
                chunks = Chunk.objects.filter(bot=bot).count()
                ingestion = {
                    "documents": len(pages),
                    "chunks": chunks,
                    "seconds": round(elapsed, 1),
                    "chunks_per_second": round(chunks / elapsed, 1),
                }
                print(
                    f"Ingested {len(pages)} chapters through upload + the ingestion task: {chunks} chunks in "
                    f"{elapsed:.1f} s = {chunks / elapsed:.1f} chunks/s (model {embedding_model_name()})"
                )
            else:
                from bots.models import Bot

                bot = Bot.objects.get(tenant=tenant)
                print(f"Reusing the ingested bot: {Chunk.objects.filter(bot=bot).count()} chunks")

            chapter_of_document = dict(Document.objects.filter(bot=bot).values_list("public_id", "metadata__chapter"))
            check_data(questions, follow_ups, bot, Chunk)

            if args.fit:
                fit_relevance(questions, unanswerable, tenant, bot, chapter_of_document)
                return 0

            tallies = {mode: {part: Tally() for part in parts} for mode in modes}
            latencies: dict[str, list[float]] = {mode: [] for mode in modes}
            provider = get_provider()
            fallback = bot.fallback_message

            def hit_rank(passages, doc: str, phrase: str) -> int | None:
                wanted, chapter = normalise(phrase), chapter_of(doc)
                for rank, passage in enumerate(passages, start=1):
                    if chapter_of_document.get(passage.document_id) == chapter and wanted in normalise(passage.text):
                        return rank
                return None

            def ranked(mode: str, query: str):
                started = time.perf_counter()
                if mode == "pipeline":
                    passages = search(tenant=tenant, bot=bot, query=query, top_k=TOP_K, min_score=0.0)
                else:
                    passages = search_ranked(tenant=tenant, bot=bot, query=query, top_k=TOP_K, min_score=0.0, mode=mode)
                latencies[mode].append((time.perf_counter() - started) * 1000)
                return passages

            def answer(mode: str, query: str, conversation=None) -> tuple[str, bool, object]:
                """(answer text, refused, conversation) from the chat code for this mode."""
                if mode == "pipeline":
                    prepared = chat_services.chat_reply_start(
                        tenant=tenant,
                        bot_id=bot.public_id,
                        user_message=query,
                        conversation_id=conversation.public_id if conversation is not None else None,
                    )
                    message = chat_services.reply_generate(prepared)
                    return message.content, message.is_fallback, message.conversation
                passages = search_ranked(
                    tenant=tenant,
                    bot=bot,
                    query=query,
                    top_k=ANSWER_TOP_K,
                    min_score=float((bot.retrieval or {}).get("min_score", 0.0)),
                    mode=mode,
                )
                # The chat code's own steps after retrieval: the answerability cut, then the provider.
                grounding = provider.ground(query=query, passages=answerable_passages(bot=bot, passages=passages))
                request = ProviderRequest(
                    model=provider.model_for(bot),
                    messages=[],
                    temperature=0.0,
                    max_tokens=bot.max_tokens,
                    query=query,
                    passages=tuple(grounding.passages),
                    fallback_message=fallback,
                    grounded_answer=grounding.answer,
                )
                content = provider.complete(request).content
                return content, normalise(content) == normalise(fallback), None

            # Warm the embedder's and the database's caches before timing.
            for mode in modes:
                ranked(mode, questions[0].verbatim)
                latencies[mode].clear()

            for question in questions:
                for mode in modes:
                    tally = tallies[mode][question.part]
                    for variant in ("verbatim", "reworded"):
                        passages = ranked(mode, getattr(question, variant))
                        tally.ranks[variant].append(hit_rank(passages, question.doc, question.phrase))
            if not args.no_chat:
                for mode in modes:
                    for question in questions:
                        tally = tallies[mode][question.part]
                        content, refused, _ = answer(mode, question.reworded)
                        tally.false_refusals.append(refused)
                        tally.answers_correct.append(not refused and normalise(question.phrase) in normalise(content))
                    for text, part in unanswerable:
                        _content, refused, _ = answer(mode, text)
                        tallies[mode][part].refusals.append(refused)
                    for follow_up in follow_ups:
                        _content, _refused, conversation = answer(mode, follow_up.first)
                        content, refused, _ = answer(mode, follow_up.second, conversation)
                        tallies[mode][follow_up.part].follow_ups.append(
                            not refused and normalise(follow_up.phrase) in normalise(content)
                        )

            results = {
                mode: {
                    "label": MODE_LABELS[mode],
                    "search_p50_ms": round(statistics.median(latencies[mode]), 1),
                    "search_p90_ms": round(statistics.quantiles(latencies[mode], n=10)[-1], 1),
                    **{part: tallies[mode][part].summary() for part in parts},
                }
                for mode in modes
            }
        report = {
            "benchmark": "quality",
            "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
            "corpus": "GNOME Help 43 (Debian gnome-user-docs 43.0-2), CC-BY-SA 3.0",
            "embedding_model": embedding_model_name(),
            "chat_provider": settings.LLM_PROVIDER,
            "bot_min_score": float((bot.retrieval or {}).get("min_score", 0.0)),
            "ingestion": ingestion,
            "modes": results,
        }
        print_table(report, parts)
        out = Path(args.out)
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    finally:
        if not args.keep:
            teardown_databases(old_config, verbosity=0)
    return 0


def fit_relevance(questions, unanswerable, tenant, bot, chapter_of_document) -> None:
    """Fit the relevance model of `knowledge.selectors` on the tuning part (never the held-out one).

    Every candidate `search` considers (both rankers' hits) is a row: its
    similarity, its gap to the best candidate's similarity and its text match,
    labelled 1 when it is in the question's chapter and holds its phrase.
    Unanswerable questions bring rows labelled 0 only. Logistic regression by
    Newton's method with a little L2 on standardised features; printed in raw units.
    """
    import numpy as np

    from bench.quality_corpus import chapter_of
    from knowledge.selectors import search_candidates

    queries = [
        (getattr(question, variant), question.doc, question.phrase)
        for question in questions
        if question.part == "tuning"
        for variant in ("verbatim", "reworded")
    ] + [(text, None, None) for text, part in unanswerable if part == "tuning"]
    rows, labels = [], []
    for query, doc, phrase in queries:
        passages = search_candidates(tenant=tenant, bot=bot, query=query, top_k=1)
        best = max((passage.similarity for passage in passages), default=0.0)
        for passage in passages:
            rows.append([passage.similarity, passage.similarity - best, passage.text_match])
            labels.append(
                doc is not None
                and chapter_of_document.get(passage.document_id) == chapter_of(doc)
                and normalise(phrase) in normalise(passage.text)
            )
    x, y = np.array(rows), np.array(labels, dtype=float)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    weights, l2 = np.zeros(z.shape[1]), 1e-2
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ weights))
        gradient = z.T @ (p - y) + l2 * np.r_[weights[:-1], 0]
        hessian = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.eye(len(weights))
        weights -= np.linalg.solve(hessian, gradient)
    raw = weights[:-1] / std
    intercept = weights[-1] - float(raw @ mean)
    print(f"fitted on {len(queries)} tuning queries, {len(rows)} candidates ({int(y.sum())} answering)")
    print(f"RELEVANCE_INTERCEPT = {intercept:.3f}")
    print(f"RELEVANCE_SIMILARITY = {raw[0]:.3f}")
    print(f"RELEVANCE_GAP = {raw[1]:.3f}")
    print(f"RELEVANCE_TEXT = {raw[2]:.3f}")


def check_data(questions, follow_ups, bot, Chunk) -> None:
    """Every phrase must be in one chunk of its page's chapter: otherwise the question could never be found."""
    from bench.quality_corpus import chapter_of

    texts: dict[str, list[str]] = {}
    for text, chapter in Chunk.objects.filter(bot=bot).values_list("text", "document__metadata__chapter"):
        texts.setdefault(chapter, []).append(normalise(text))
    missing = [
        f"{item.doc}: {item.phrase!r}"
        for item in [*questions, *follow_ups]
        if not any(normalise(item.phrase) in text for text in texts.get(chapter_of(item.doc), []))
    ]
    if missing:
        raise SystemExit("Phrases in no chunk of their page:\n  " + "\n  ".join(missing))


def print_table(report: dict, parts) -> None:
    if report["ingestion"]:
        ingestion = report["ingestion"]
        print(
            f"\ningestion: {ingestion['chunks_per_second']} chunks/s ({ingestion['chunks']} chunks, model {report['embedding_model']})"
        )
    for part in parts:
        print(f"\n{part} part")
        header = (
            f"{'':26s} {'verbatim R@1':>12s} {'R@5':>6s} {'MRR':>6s} {'re-worded R@1':>13s} {'R@5':>6s} {'MRR':>6s}"
            f" {'answer ok':>9s} {'refused unans.':>14s} {'false refusals':>14s} {'follow-up':>9s} {'p50 ms':>7s}"
        )
        print(header)
        for result in report["modes"].values():
            figures = result[part]

            def fmt(value) -> str:
                return "-" if value is None else f"{value:.3f}"

            print(
                f"{result['label']:26s} {figures['verbatim']['recall@1']:12.3f} {figures['verbatim']['recall@5']:6.3f} "
                f"{figures['verbatim']['mrr@10']:6.3f} {figures['reworded']['recall@1']:13.3f} "
                f"{figures['reworded']['recall@5']:6.3f} {figures['reworded']['mrr@10']:6.3f} "
                f"{fmt(figures['answer_correct']):>9s} {fmt(figures['refusals_on_unanswerable']):>14s} "
                f"{fmt(figures['false_refusals']):>14s} {fmt(figures['follow_up_accuracy']):>9s} "
                f"{result['search_p50_ms']:7.1f}"
            )


if __name__ == "__main__":
    sys.exit(main())
