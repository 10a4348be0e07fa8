"""Retrieval: the `search` contract, and hybrid recall against each ranker alone on a shipped question set."""

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from knowledge.models import Chunk
from knowledge.selectors import Passage, lexical_plan, relevance, search, search_ranked

RECALL_SET = json.loads((Path(__file__).parent / "data" / "recall_set.json").read_text())


def test_passages_carry_the_fields_of_the_contract(alice, alice_bot, add_text):
    document = add_text(alice_bot, "Gift cards", "# Gift cards\n\nGift cards never expire. " + "More words here. " * 60)

    (passage, *_) = search(tenant=alice.tenant, bot=alice_bot, query="Do gift cards expire?", top_k=1)

    assert [f.name for f in fields(Passage)] == [
        "chunk_id", "document_id", "title", "text", "snippet", "score", "position", "heading", "page",
        "similarity", "text_match",
    ]  # fmt: skip
    assert passage.document_id == document.public_id
    assert passage.chunk_id.startswith("chk_")
    assert passage.title == "Gift cards"
    assert passage.heading == "Gift cards"
    assert passage.page is None
    assert passage.position == 0
    assert passage.text.startswith("Gift cards never expire.")
    assert len(passage.snippet) <= 300 < len(passage.text)
    assert passage.snippet.endswith("…")
    assert 0.3 < passage.score <= 1
    assert 0.3 < passage.similarity <= 1
    assert passage.text_match == 1.0  # "gift", "card" and "expir" are all in it


def test_top_k_and_min_score_default_to_the_bots_retrieval_settings(alice, alice_bot, add_text):
    for n in range(8):
        add_text(alice_bot, f"Note {n}", f"Widget note number {n} about batteries and charging.")
    alice_bot.retrieval = {"top_k": 3, "min_score": 0.0}
    alice_bot.save()

    assert len(search(tenant=alice.tenant, bot=alice_bot, query="battery charging")) == 3
    assert len(search(tenant=alice.tenant, bot=alice_bot, query="battery charging", top_k=6)) == 6

    alice_bot.retrieval = {"top_k": 8, "min_score": 0.99}
    alice_bot.save()
    assert search(tenant=alice.tenant, bot=alice_bot, query="battery charging") == []
    scores = [p.score for p in search(tenant=alice.tenant, bot=alice_bot, query="battery charging", min_score=0.4)]
    assert scores
    assert min(scores) >= 0.4


def test_an_empty_query_finds_nothing(alice, alice_bot, add_text):
    add_text(alice_bot, "x", "Something to find.")

    assert search(tenant=alice.tenant, bot=alice_bot, query="   ") == []


def test_a_query_vector_computed_elsewhere_gives_the_same_passages(alice, alice_bot, add_text):
    from concurrent.futures import ThreadPoolExecutor

    from knowledge.conf import configured_embedder

    for n in range(6):
        add_text(alice_bot, f"Note {n}", f"Widget note number {n} about batteries and charging.")
    query = "How do I charge the battery?"
    expected = search(tenant=alice.tenant, bot=alice_bot, query=query)
    vector = configured_embedder().embed([query])[0]
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(configured_embedder().embed, [query])

        assert search(tenant=alice.tenant, bot=alice_bot, query=query, query_vector=vector) == expected
        assert search(tenant=alice.tenant, bot=alice_bot, query=query, query_vector=lambda: future.result()[0]) == (
            expected
        )
    assert expected


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_hnsw_settings_are_made_once_per_connection(alice, alice_bot, add_text, settings):
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    settings.KNOWLEDGE_HNSW_EF_SEARCH = 123
    settings.KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS = 0  # the HNSW path, even for this bot
    add_text(alice_bot, "Batteries", "Charge the battery for two hours before first use.")

    def searches_setting_hnsw(**options) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert search(tenant=alice.tenant, bot=alice_bot, query="battery charging", **options)
        return sum("hnsw.ef_search" in query["sql"] for query in queries.captured_queries)

    def session_settings() -> tuple[str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
            return cursor.fetchone()

    assert searches_setting_hnsw() == 1
    assert session_settings() == ("123", "relaxed_order")
    assert searches_setting_hnsw() == 0  # this connection has them already
    assert searches_setting_hnsw(top_k=150) == 1  # more candidates than ef_search: a wider search
    assert session_settings() == ("150", "relaxed_order")

    # In a transaction they are local to it (a rollback would undo a session setting unseen).
    with transaction.atomic():
        settings.KNOWLEDGE_HNSW_EF_SEARCH = 321
        assert searches_setting_hnsw() == 1
        assert session_settings() == ("321", "relaxed_order")
        transaction.set_rollback(True)
    assert session_settings() == ("150", "relaxed_order")


def test_search_refuses_a_bot_of_another_tenant(alice, charlie_bot):
    from bothero.errors import NotFoundError

    with pytest.raises(NotFoundError):
        search(tenant=alice.tenant, bot=charlie_bot, query="anything")


def test_a_bot_with_a_small_share_of_the_index_still_gets_top_k_results(alice, alice_bot, add_text, settings):
    # Iterative index scans: the HNSW walk goes on until enough rows pass the bot filter.
    from django.db import connection, transaction

    from bothero.testing.factories import BotFactory

    busy_bot = BotFactory(tenant=alice.tenant)
    rows = "\n".join(f"Widget battery charger model {n},{n * 3} euros" for n in range(300))
    add_text(busy_bot, "busy", "product,price\n" + rows)
    for n in range(6):
        add_text(alice_bot, f"mine {n}", f"Our office cat number {n} sleeps on the sofa.")
    settings.KNOWLEDGE_HNSW_EF_SEARCH = 10
    settings.KNOWLEDGE_SEARCH_CANDIDATES = 10
    settings.KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS = 0  # the HNSW path, even for this bot

    with transaction.atomic(), connection.cursor() as cursor:
        # On a table this small the planner would scan it exactly; make it walk the HNSW index.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM knowledge_chunk WHERE bot_id = %s AND in_shared_index "
            "ORDER BY embedding <=> %s::vector LIMIT 10",
            [alice_bot.pk, "[" + ",".join(["0.05"] * 384) + "]"],
        )
        assert "chunk_embedding_shared_hnsw" in " ".join(row[0] for row in cursor.fetchall())
        # The busy bot's chunks are all nearer to this query than any of Alice's bot's.
        results = search_ranked(
            tenant=alice.tenant, bot=alice_bot, query="widget battery charger", top_k=6, mode="vector"
        )

    assert Chunk.objects.filter(bot=busy_bot).count() == 300
    assert len(results) == 6


SMALL_BOT_NOTES = [
    "Charge the battery for two hours before first use.",
    "The charger's light turns green when the battery is full.",
    "Gift cards never expire and can be used online.",
    "Returns are accepted within thirty days with a receipt.",
    "Our office cat sleeps on the sofa near the window.",
    "Shipping to Norway takes four to six working days.",
    "A spare battery can be ordered from the accessories page.",
    "Batteries should be stored at room temperature, half charged.",
    "The warranty covers the charger for two years.",
    "Loyalty points are added to your account after delivery.",
    "The widget pairs with your phone over Bluetooth.",
    "Reset the widget by holding the button for ten seconds.",
]


def vector_plan(bot, tenant, query):
    """The chunk ids of a vector-only search, and the plan of its statement (with the index scans favoured)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic(), connection.cursor() as cursor:
        # On tables this small the planner would scan rather than use any index: make indexes cheap.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
        with CaptureQueriesContext(connection) as queries:
            passages = search_ranked(tenant=tenant, bot=bot, query=query, top_k=len(SMALL_BOT_NOTES), mode="vector")
        (statement,) = [q["sql"] for q in queries.captured_queries if "embedding <=>" in q["sql"]]
        cursor.execute("EXPLAIN " + statement)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return [p.chunk_id for p in passages], plan


def test_a_small_bot_is_searched_exactly_its_ranking_equals_the_exact_one(alice, alice_bot, add_text, settings):
    import numpy as np

    from bothero.testing.factories import BotFactory
    from knowledge.selectors import query_embedding

    # Another bot's chunks in the same index, nearer to the query than most of this bot's.
    busy_bot = BotFactory(tenant=alice.tenant)
    for n in range(10):
        add_text(busy_bot, f"busy {n}", f"Battery charger model {n}: charge the battery in {n + 1} hours.")
    for n, note in enumerate(SMALL_BOT_NOTES):
        add_text(alice_bot, f"note {n}", note)
    query = "How long should I charge the battery?"
    chunks = list(Chunk.objects.filter(bot=alice_bot).values_list("id", "public_id", "embedding"))
    vector = query_embedding(query)
    distances = [(1 - float(np.dot(e, vector) / np.linalg.norm(e) / np.linalg.norm(vector)), pk, public_id)
                 for pk, public_id, e in chunks]  # fmt: skip
    exact = [public_id for _distance, _pk, public_id in sorted(distances)]
    assert len(exact) == len(SMALL_BOT_NOTES)

    settings.KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS = len(SMALL_BOT_NOTES)
    found, plan = vector_plan(alice_bot, alice.tenant, query)

    assert found == exact
    assert "chunk_embedding_shared_hnsw" not in plan
    assert re.search(r"Index Scan using \S*bot_id\S* on knowledge_chunk", plan)  # the bot's rows, through its index

    # One chunk more than the threshold: the shared HNSW index (partial: the statement carries its predicate).
    settings.KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS = len(SMALL_BOT_NOTES) - 1
    found, plan = vector_plan(alice_bot, alice.tenant, query)

    assert "Index Scan using chunk_embedding_shared_hnsw" in plan
    assert set(found) == set(exact)


def text_plan(bot, tenant, query):
    """The chunk ids of a full-text-only search, and the (verbose) plan of its statement (indexes favoured)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic(), connection.cursor() as cursor:
        # On tables this small the planner would scan rather than use any index: bitmap index scans only.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        with CaptureQueriesContext(connection) as queries:
            passages = search_ranked(tenant=tenant, bot=bot, query=query, top_k=20, mode="fulltext")
        (statement,) = [q["sql"] for q in queries.captured_queries if "ts_rank_cd" in q["sql"]]
        cursor.execute("EXPLAIN VERBOSE " + statement)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return [p.chunk_id for p in passages], plan


def test_a_small_bot_in_a_large_index_finds_its_full_text_hits_in_its_own_rows(alice, alice_bot, add_text):
    from django.db import connection

    from bothero.testing.factories import BotFactory
    from knowledge import selectors

    # Another bot whose chunks share the query's words: the GIN index's posting lists are mostly its.
    busy_bot = BotFactory(tenant=alice.tenant)
    for n in range(40):
        add_text(busy_bot, f"busy {n}", f"Battery charger model {n}: charge the battery in {n + 1} hours.")
    for n, note in enumerate(SMALL_BOT_NOTES):
        add_text(alice_bot, f"note {n}", note)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_chunk")  # the planner's estimate of all bots' chunks
    query = "How long should I charge the battery and the charger?"

    # At this size the GIN index is the cheaper path; the cost of a bot row decides which is taken.
    original = selectors.BOT_ROW_COST_IN_POSTINGS
    try:
        through_gin, gin_plan = text_plan(alice_bot, alice.tenant, query)
        selectors.BOT_ROW_COST_IN_POSTINGS = 0  # as if the index held far more chunks than this bot
        own_rows, rows_plan = text_plan(alice_bot, alice.tenant, query)
    finally:
        selectors.BOT_ROW_COST_IN_POSTINGS = original

    assert "bot_chunks" not in gin_plan
    assert "bot_chunks" in rows_plan
    assert "chunk_search_vector_gin" not in rows_plan
    assert re.search(r"Bitmap Index Scan on \S*bot_id\S*", rows_plan)  # the bot's rows, through its index
    assert own_rows == through_gin  # the same hits in the same order
    assert len(own_rows) >= 2
    assert set(own_rows) <= set(Chunk.objects.filter(bot=alice_bot).values_list("public_id", flat=True))


def test_the_full_text_ranker_reads_a_bots_rows_only_when_they_are_few_against_the_index():
    from knowledge.selectors import text_search_reads_bot_rows

    # A bot of 1,000 chunks in a million: its 100 matches stand for ~100,000 postings of all bots.
    assert text_search_reads_bot_rows(1_000, 100, 1_000_000)
    # The only bot of the index, or a large one: the GIN index.
    assert not text_search_reads_bot_rows(1_000_000, 500, 1_000_000)
    assert not text_search_reads_bot_rows(50_000, 500, 1_000_000)
    # Index size unknown (never analysed), or an empty bot: the GIN index.
    assert not text_search_reads_bot_rows(1_000, 100, -1)
    assert not text_search_reads_bot_rows(0, 0, 1_000_000)


def test_a_chunks_embedding_stays_in_its_row_for_the_exact_scan(alice, alice_bot, add_text):
    from django.db import connection

    # Full chunks: with text and tsvector a row is over the 2 KB at which PostgreSQL moves values out.
    add_text(alice_bot, "long", " ".join(SMALL_BOT_NOTES * 4))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_size(c.*), pg_column_toast_chunk_id(embedding) FROM knowledge_chunk c WHERE bot_id = %s",
            [alice_bot.pk],
        )
        rows = cursor.fetchall()
    assert max(row_bytes for row_bytes, _ in rows) > 2000
    assert [toast_id for _, toast_id in rows] == [None] * len(rows)


def ranks(tenant, bot, ids_by_title, mode, k):
    """The rank (1-based) of each question's answer in the top k, or None."""
    found = []
    for item in RECALL_SET["questions"]:
        passages = search_ranked(tenant=tenant, bot=bot, query=item["question"], top_k=k, mode=mode)
        order = [p.document_id for p in passages]
        answer = ids_by_title[item["answer"]]
        found.append(order.index(answer) + 1 if answer in order else None)
    return found


def test_hybrid_recall_at_5_is_at_least_that_of_full_text_alone_and_of_vectors_alone(alice, alice_bot, add_text):
    ids_by_title = {title: add_text(alice_bot, title, text).public_id for title, text in RECALL_SET["passages"].items()}
    assert len(RECALL_SET["passages"]) >= 30
    assert len(RECALL_SET["questions"]) >= 20

    recall = {}
    for mode in ("hybrid", "fulltext", "vector"):
        found = ranks(alice.tenant, alice_bot, ids_by_title, mode, k=5)
        recall[mode] = sum(rank is not None for rank in found) / len(found)

    print(f"recall@5 on {len(RECALL_SET['questions'])} questions: {recall}")
    assert recall["hybrid"] >= recall["fulltext"]
    assert recall["hybrid"] >= recall["vector"]
    # Neither ranker alone finds everything on this set, so fusion has to earn its result.
    assert recall["fulltext"] < 1
    assert recall["vector"] < 1
    assert recall["hybrid"] >= 0.95


def test_the_lexical_plan_needs_a_distinctive_word_and_weighs_rare_words_more():
    # 100 chunks: "widget" is everywhere, "swim" in 2, "take" in 10; "teleport" nowhere.
    plan = lexical_plan({"widget": 90, "swim": 2, "take": 10, "teleport": 0}, total=100)

    assert plan.weights["swim"] > plan.weights["take"] > plan.weights["widget"]
    assert "teleport" not in plan.weights
    # "widget" alone cannot reach the bar, so candidates are found through the rarer words.
    assert plan.weights["widget"] < plan.min_score
    assert "widget" not in plan.candidate_terms
    assert plan.candidate_terms[0] == "swim"
    assert lexical_plan({"teleport": 0}, total=100) is None


def test_the_bots_full_text_statistics_follow_its_chunks(alice, alice_bot, add_text):
    from django.db import connection

    from knowledge import services
    from knowledge.models import LexemeStat

    first = add_text(alice_bot, "a", "Gift cards never expire. Gift cards are great.")
    second = add_text(alice_bot, "b", "# Cards\n\nLoyalty cards collect points.\n\n# Points\n\nPoints expire yearly.")
    services.document_reindex(document=second)
    services.document_delete(document=first)
    add_text(alice_bot, "c", "Vouchers never expire.")

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM knowledge_chunk WHERE bot_id = {int(alice_bot.pk)}')"
        )
        expected = dict(cursor.fetchall())
    stats = dict(LexemeStat.objects.filter(bot=alice_bot, chunk_count__gt=0).values_list("lexeme", "chunk_count"))
    total = stats.pop("")
    assert stats == expected
    assert total == Chunk.objects.filter(bot=alice_bot).count() == 1


def test_results_are_ordered_by_the_calibrated_score_they_show_and_min_score_cuts_on_it(alice, alice_bot, add_text):
    for title, text in RECALL_SET["passages"].items():
        add_text(alice_bot, title, text)

    for item in RECALL_SET["questions"]:
        passages = search(tenant=alice.tenant, bot=alice_bot, query=item["question"], top_k=10, min_score=0.0)
        scores = [passage.score for passage in passages]
        assert scores == sorted(scores, reverse=True), item["question"]
        assert all(0.0 <= score <= 1.0 for score in scores)
        # The score is the relevance model of its inputs, not the similarity shown beside it.
        best = max(passage.similarity for passage in passages)
        for passage in passages:
            expected = relevance(similarity=passage.similarity, best_similarity=best, text_match=passage.text_match)
            assert passage.score == pytest.approx(expected, abs=1e-5)

    query = RECALL_SET["questions"][0]["question"]
    everything = search(tenant=alice.tenant, bot=alice_bot, query=query, top_k=10, min_score=0.0)
    cut = everything[2].score
    kept = search(tenant=alice.tenant, bot=alice_bot, query=query, top_k=10, min_score=cut)
    assert [p.chunk_id for p in kept] == [p.chunk_id for p in everything if p.score >= cut]
    assert len(kept) < len(everything)


def test_the_relevance_model_rises_with_similarity_and_text_match_and_falls_below_the_best_candidate():
    best = relevance(similarity=0.7, best_similarity=0.7, text_match=0.5)
    assert relevance(similarity=0.8, best_similarity=0.8, text_match=0.5) > best
    assert relevance(similarity=0.7, best_similarity=0.7, text_match=1.0) > best
    # The same similarity, but another candidate is much closer to the question.
    assert relevance(similarity=0.7, best_similarity=0.9, text_match=0.5) < best
    # A weak best candidate stays improbable: the score is a probability, not a rank.
    assert relevance(similarity=0.2, best_similarity=0.2, text_match=0.0) < 0.1
    assert 0.0 < relevance(similarity=1.0, best_similarity=1.0, text_match=1.0) < 1.0


def test_the_rrf_mode_keeps_the_fused_order_and_shows_the_same_scores(alice, alice_bot, add_text):
    for title, text in RECALL_SET["passages"].items():
        add_text(alice_bot, title, text)
    query = "How long do I have to change my mind and send something back?"

    hybrid = search_ranked(tenant=alice.tenant, bot=alice_bot, query=query, top_k=40, min_score=0.0, mode="hybrid")
    fused = search_ranked(tenant=alice.tenant, bot=alice_bot, query=query, top_k=40, min_score=0.0, mode="rrf")

    # The same candidates with the same scores; only "hybrid" is ordered by them.
    assert {p.chunk_id: p.score for p in hybrid} == {p.chunk_id: p.score for p in fused}
    assert [p.score for p in hybrid] == sorted((p.score for p in fused), reverse=True)


class SlowEmbedder:
    """The configured model answering only after `delay` seconds (as an embedding API would), recording when."""

    def __init__(self, model, delay: float = 0.3, error: Exception | None = None):
        self.model, self.delay, self.error = model, delay, error
        self.started: list[float] = []
        self.finished: list[float] = []

    def embed(self, texts):
        import time

        self.started.append(time.monotonic())
        time.sleep(self.delay)
        if self.error:
            raise self.error
        vectors = self.model.embed(texts)
        self.finished.append(time.monotonic())
        return vectors

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_the_full_text_ranker_runs_while_the_query_is_embedded(alice, alice_bot, add_text, monkeypatch):
    import time

    from django.db import connection

    from knowledge import selectors

    add_text(alice_bot, "Batteries", "Charge the battery for two hours before the first use.")
    add_text(alice_bot, "Refunds", "Refunds are paid back to your card within 14 days.")
    query = "How long do I charge the battery?"
    expected = search(tenant=alice.tenant, bot=alice_bot, query=query, query_vector=selectors.query_embeddings(query))
    slow = SlowEmbedder(selectors.configured_embedder())
    monkeypatch.setattr(selectors, "configured_embedder", lambda: slow)
    statements = []

    def record(execute, sql, params, many, context):
        statements.append((time.monotonic(), sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        passages = search(tenant=alice.tenant, bot=alice_bot, query=query)

    (full_text_at,) = [at for at, sql in statements if "ts_rank_cd" in sql]
    assert slow.started[0] < full_text_at < slow.finished[0]
    assert passages == expected
    assert passages[0].text.startswith("Charge the battery")


def test_an_embedding_error_on_the_worker_thread_reaches_the_caller(alice, alice_bot, add_text, monkeypatch):
    from knowledge import selectors
    from knowledge.embeddings import EmbeddingError

    add_text(alice_bot, "Batteries", "Charge the battery for two hours before the first use.")
    failing = SlowEmbedder(selectors.configured_embedder(), delay=0.05, error=EmbeddingError("unreachable"))
    monkeypatch.setattr(selectors, "configured_embedder", lambda: failing)

    with pytest.raises(EmbeddingError, match="unreachable"):
        search(tenant=alice.tenant, bot=alice_bot, query="How long do I charge the battery?")
