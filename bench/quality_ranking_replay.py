"""An offline copy of the search pipeline's ranking, for measuring ranking levers in seconds.

    python bench/quality.py --keep --no-chat --modes pipeline   # ingest once, keep the database
    python bench/quality_ranking_replay.py --dump               # every question's candidates, with features
    python bench/quality_ranking_replay.py                      # today's order from the copy (a self-check)

`--dump` reads the database `bench/quality.py --keep` left behind and writes
var/quality_ranking_candidates.pkl: every chunk of the bot (public id,
chapter, position, heading, text, both models' vectors) and every question
(verbatim, re-worded, unanswerable; its part, the chunks that answer it, both
query embeddings, and the candidates of `knowledge.selectors.search_candidates`
in the pipeline's order with their similarity, text match and score). A lever
is then a function from a question to its candidates' order, measured with
`figures` on the tuning part first (docs/quality.md, "Re-ranking levers with the
ensemble"); without arguments this prints the figures of the stored order, which
must equal the benchmark's pipeline row. (`bench/quality_replay.py` is its
counterpart for the chat steps after retrieval.)
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
os.environ["BOTHERO_TEST_DB_NAME"] = "bench_quality"

from bench.quality import TENANT_NAME, load_questions, load_unanswerable, normalise  # noqa: E402

DUMP = ROOT / "var" / "quality_ranking_candidates.pkl"


def dump() -> Path:
    """Write every chunk and every question's candidates of the kept benchmark database (see the module)."""
    import django

    django.setup()
    from django.test.utils import setup_databases

    from accounts.models import Tenant
    from bench.quality_corpus import chapter_of
    from bots.models import Bot
    from knowledge.models import Chunk
    from knowledge.selectors import query_embeddings, search_candidates

    setup_databases(verbosity=0, interactive=False, keepdb=True, serialized_aliases=[])
    tenant = Tenant.objects.filter(name=TENANT_NAME).first()
    if tenant is None:
        raise SystemExit("No kept benchmark database: run bench/quality.py --keep first.")
    bot = Bot.objects.get(tenant=tenant)
    chunks = [
        {
            "id": chunk.public_id,
            "chapter": chunk.document.metadata.get("chapter"),
            "document": chunk.document.public_id,
            "position": chunk.position,
            "heading": chunk.heading,
            "text": chunk.text,
            "vector": np.asarray(chunk.embedding, dtype=np.float32),
            "aux_vector": np.asarray(chunk.embedding_aux, dtype=np.float32),
        }
        for chunk in Chunk.objects.filter(bot=bot).select_related("document").order_by("document_id", "position")
    ]
    index = {chunk["id"]: number for number, chunk in enumerate(chunks)}
    texts = [normalise(chunk["text"]) for chunk in chunks]
    items = [
        (getattr(question, variant), variant, question.part, chapter_of(question.doc), normalise(question.phrase))
        for question in load_questions()
        for variant in ("verbatim", "reworded")
    ] + [(text, "unanswerable", part, None, None) for text, part in load_unanswerable()]
    questions = []
    for query, variant, part, chapter, phrase in items:
        embedding = query_embeddings(query)
        candidates = search_candidates(tenant=tenant, bot=bot, query=query, top_k=1, query_vector=embedding)
        questions.append(
            {
                "query": query,
                "variant": variant,
                "part": part,
                "answers": {n for n, chunk in enumerate(chunks) if chunk["chapter"] == chapter and phrase in texts[n]}
                if chapter
                else set(),
                "vector": embedding.vector,
                "aux_vector": embedding.aux,
                "candidates": np.array([index[passage.chunk_id] for passage in candidates]),
                "similarity": np.array([passage.similarity for passage in candidates]),
                "text_match": np.array([passage.text_match for passage in candidates]),
                "score": np.array([passage.score for passage in candidates]),
            }
        )
    path = DUMP
    path.parent.mkdir(exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump({"chunks": chunks, "questions": questions}, handle)
    return path


def load(path: Path | None = None) -> dict:
    with open(path or DUMP, "rb") as handle:
        return pickle.load(handle)


def figures(questions: list[dict], order: Callable[[dict], list[int]], *, part: str, variant: str) -> dict:
    """Recall@1, recall@5 and MRR@10 of `order` (a question → its chunks' indices, best first)."""
    ranks = []
    for question in questions:
        if question["part"] != part or question["variant"] != variant:
            continue
        ranked = list(order(question))[:10]
        ranks.append(next((n + 1 for n, chunk in enumerate(ranked) if chunk in question["answers"]), None))
    count = len(ranks) or 1
    return {
        "recall@1": round(sum(rank == 1 for rank in ranks) / count, 3),
        "recall@5": round(sum(rank is not None and rank <= 5 for rank in ranks) / count, 3),
        "mrr@10": round(sum(1 / rank for rank in ranks if rank) / count, 3),
    }


def stored_order(question: dict) -> list[int]:
    """The pipeline's order, as dumped."""
    return question["candidates"].tolist()


def main() -> int:
    if sys.argv[1:] == ["--dump"]:
        print(f"wrote {dump()}")
        return 0
    if sys.argv[1:]:
        raise SystemExit(__doc__)
    questions = load()["questions"]
    for part in ("held-out", "tuning"):
        for variant in ("verbatim", "reworded"):
            print(f"{part:9s} {variant:9s}", figures(questions, stored_order, part=part, variant=variant))
    return 0


if __name__ == "__main__":
    sys.exit(main())
