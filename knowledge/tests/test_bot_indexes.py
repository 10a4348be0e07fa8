"""A large bot's own search indexes (knowledge.services.bot_indexes), with the thresholds lowered to a few chunks."""

import re

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bothero.testing.factories import BotFactory
from knowledge import services, sql, tasks
from knowledge.models import Chunk, Document
from knowledge.selectors import bot_indexes_state, query_embedding, search_ranked
from knowledge.tests.test_retrieval import SMALL_BOT_NOTES

pytestmark = pytest.mark.django_db(transaction=True)  # CREATE INDEX CONCURRENTLY cannot run in a transaction


@pytest.fixture(autouse=True)
def no_bot_indexes_left():
    """Drop the bots' own indexes after each test: they outlive the flushed tables, and the next test's
    bots may get the same primary keys."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'knowledge\\_chunk\\_bot%'")
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


@pytest.fixture
def thresholds(settings):
    # Own indexes above 10 chunks, dropped below 6; exact search up to 5 (above it, HNSW).
    settings.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 10
    settings.KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS = 6
    settings.KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS = 5
    settings.KNOWLEDGE_BOT_INDEX_EF_SEARCH = 40
    return settings


def state(bot_id):
    with connection.cursor() as cursor:
        return bot_indexes_state(cursor, bot_id)


def add_notes(bot, notes):
    # Outside a transaction: each document's ingestion, and what it queues, runs when it commits.
    return [
        services.document_create_from_text(tenant=bot.tenant, bot=bot, title=f"note {n}", text=note)
        for n, note in enumerate(notes)
    ]


def planned(bot, query, mode):
    """The chunk ids `search_ranked` finds, its statement, and that statement's plan (index scans favoured)."""
    with transaction.atomic(), connection.cursor() as cursor:
        # On tables this small the planner would scan rather than use any index (for full text: bitmap scans).
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
        if mode == "fulltext":
            # Nor would it go through any GIN index while the bot's few rows are one page of a bot_id
            # index away: without those (rolled back), the choice is the shared GIN or the bot's own.
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'knowledge_chunk' AND indexdef LIKE '%btree (bot_id)'"
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.execute("SET LOCAL enable_sort = on; SET LOCAL enable_indexscan = off")
        with CaptureQueriesContext(connection) as queries:
            passages = search_ranked(tenant=bot.tenant, bot=bot, query=query, top_k=len(SMALL_BOT_NOTES), mode=mode)
        marker = "embedding <=>" if mode == "vector" else "ts_rank_cd"
        (statement,) = [q["sql"] for q in queries.captured_queries if marker in q["sql"]]
        cursor.execute("EXPLAIN " + statement)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return [p.chunk_id for p in passages], statement, plan


def exact_ranking(bot, query):
    vector = query_embedding(query)
    chunks = Chunk.objects.filter(bot=bot).values_list("public_id", "embedding")
    distances = [(1 - float(np.dot(e, vector) / np.linalg.norm(e) / np.linalg.norm(vector)), public_id)
                 for public_id, e in chunks]  # fmt: skip
    return [public_id for _distance, public_id in sorted(distances)]


def test_a_bot_crossing_the_threshold_gets_its_own_indexes_and_search_uses_them(alice, alice_bot, thresholds):
    busy_bot = BotFactory(tenant=alice.tenant)
    add_notes(busy_bot, [f"Battery charger model {n}: charge the battery in {n + 1} hours." for n in range(8)])
    add_notes(alice_bot, SMALL_BOT_NOTES[:10])
    assert state(alice_bot.pk) == {}  # 10 chunks: not above the threshold yet

    add_notes(alice_bot, SMALL_BOT_NOTES[10:])  # 12: the task queued by the ingestion builds them

    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}
    assert state(busy_bot.pk) == {}
    query = "How long should I charge the battery?"
    found, statement, plan = planned(alice_bot, query, "vector")
    # The bot's id is in the statement's text, so the planner can match the partial index's predicate.
    assert f"bot_id = {alice_bot.pk}" in statement
    assert f"Index Scan using {sql.bot_index_name(alice_bot.pk, 'hnsw')}" in plan
    assert "chunk_embedding_shared_hnsw" not in plan
    assert found == exact_ranking(alice_bot, query)

    found, statement, plan = planned(alice_bot, "charger battery warranty", "fulltext")
    assert sql.bot_index_name(alice_bot.pk, "gin") in plan, plan
    assert "chunk_search_vector_gin" not in plan
    assert found  # the hits themselves are the shared index's (same statement, other index)


def test_its_own_graph_is_searched_with_its_own_ef_search(alice, alice_bot, thresholds):
    add_notes(alice_bot, SMALL_BOT_NOTES)
    with CaptureQueriesContext(connection) as queries:
        search_ranked(tenant=alice.tenant, bot=alice_bot, query="battery", mode="vector")
    assert any("hnsw.ef_search" in q["sql"] and "'40'" in q["sql"] for q in queries.captured_queries)


def test_the_indexes_stay_between_the_thresholds_and_go_below_the_lower_one(alice, alice_bot, thresholds):
    documents = add_notes(alice_bot, SMALL_BOT_NOTES)
    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}

    for document in documents[:5]:  # 7 chunks left: below the building threshold, above the dropping one
        services.document_delete(document=document)
    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}
    assert services.bot_indexes_sync(bot_id=alice_bot.pk) == []

    services.document_delete(document=documents[5])  # 6: not fewer than the lower threshold
    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}
    services.document_delete(document=documents[6])  # 5: fewer

    assert state(alice_bot.pk) == {}
    assert Chunk.objects.filter(bot=alice_bot).count() == 5
    # Its searches go the way they did before it had them (exact at this size).
    found, _statement, plan = planned(alice_bot, "battery", "vector")
    assert "knowledge_chunk_bot" not in plan
    assert found == exact_ranking(alice_bot, "battery")


def test_an_index_left_invalid_by_a_failed_build_is_not_used_and_is_rebuilt(alice, alice_bot, thresholds):
    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 100  # no build while the notes go in
    add_notes(alice_bot, SMALL_BOT_NOTES)
    name = sql.bot_index_name(alice_bot.pk, "hnsw")
    with connection.cursor() as cursor, pytest.raises(Exception, match="could not create unique index"):
        # A concurrent build that fails (duplicate keys) leaves its index behind, marked invalid.
        cursor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON knowledge_chunk (tenant_id) WHERE bot_id = {alice_bot.pk}"
        )
    assert state(alice_bot.pk) == {"hnsw": False}
    _found, _statement, plan = planned(alice_bot, "battery", "vector")
    assert "Index Scan using chunk_embedding_shared_hnsw" in plan, plan  # the shared graph, as before

    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 10
    assert tasks.sync_bot_indexes.delay(alice_bot.pk).get() == ["built hnsw", "built gin"]

    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        assert re.search(r"USING hnsw \(embedding vector_cosine_ops\).*WHERE \(bot_id = \d+\)", cursor.fetchone()[0])
    found, _statement, plan = planned(alice_bot, "battery", "vector")
    assert name in plan
    assert found == exact_ranking(alice_bot, "battery")


def test_the_hourly_sweep_finds_the_bots_whose_indexes_are_out_of_date(alice, alice_bot, thresholds):
    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 100  # no build while the notes go in
    add_notes(alice_bot, SMALL_BOT_NOTES)
    assert services.bot_indexes_out_of_date() == []

    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 10  # e.g. a message lost: nothing built yet
    assert services.bot_indexes_out_of_date() == [alice_bot.pk]
    assert tasks.sync_all_bot_indexes.delay().get() == 1

    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}
    assert services.bot_indexes_out_of_date() == []


def test_deleting_the_bot_drops_its_indexes(alice, alice_bot, thresholds):
    from bots.services import bot_delete

    add_notes(alice_bot, SMALL_BOT_NOTES)
    bot_id = alice_bot.pk
    assert state(bot_id) == {"hnsw": True, "gin": True}

    bot_delete(bot=alice_bot)

    assert state(bot_id) == {}
    assert not Document.objects.filter(bot_id=bot_id).exists()


def test_a_second_sync_of_a_bot_being_synced_returns_at_once(alice, alice_bot, thresholds):
    import psycopg

    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 100
    add_notes(alice_bot, SMALL_BOT_NOTES)
    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 10
    with connection.cursor() as cursor:
        cursor.execute("SELECT hashtextextended('knowledge.bot_indexes:' || %s, 0)", [str(alice_bot.pk)])
        (key,) = cursor.fetchone()
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [key])  # another worker's sync holds the bot
        assert services.bot_indexes_sync(bot_id=alice_bot.pk) == ["busy"]
        # Released here, not by closing the connection: the server ends that session after the client has
        # gone, and a loaded machine let the next sync find the lock still held (CI, 2026-11-30).
        other.execute("SELECT pg_advisory_unlock(%s)", [key])
    assert services.bot_indexes_sync(bot_id=alice_bot.pk) == ["built hnsw", "built gin"]


def test_the_hourly_sweep_is_scheduled_on_the_ingestion_queue(settings):
    from bothero.celery import app as celery_app

    entry = settings.CELERY_BEAT_SCHEDULE["knowledge-sync-bot-indexes"]
    assert entry["task"] == tasks.sync_all_bot_indexes.name
    assert entry["task"] in celery_app.tasks
    assert entry["options"]["queue"] == "ingestion"


def shared_flags(bot):
    """Each of the bot's chunks' `in_shared_index`, by text."""
    return dict(Chunk.objects.filter(bot=bot).values_list("text", "in_shared_index"))


def test_a_large_bots_new_chunks_stay_out_of_the_shared_graph_and_are_still_found(alice, alice_bot, thresholds):
    add_notes(alice_bot, SMALL_BOT_NOTES[:11])  # 11 chunks: its own indexes are built after the last one
    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}
    more = SMALL_BOT_NOTES[11:] + [f"Battery pack {n} charges in {n + 3} hours on the fast charger." for n in range(4)]
    add_notes(alice_bot, more)

    flags = shared_flags(alice_bot)
    # Written before it had its own graph: in both. Since: in its own graph alone.
    assert [flags[note] for note in SMALL_BOT_NOTES[:11]] == [True] * 11
    assert [flags[note] for note in more] == [False] * len(more)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knowledge_chunk WHERE bot_id = %s AND in_shared_index", [alice_bot.pk])
        assert cursor.fetchone()[0] == 11  # what the shared (partial) graph indexes of the bot

    query = "How long does the battery pack take to charge?"
    found, _statement, plan = planned(alice_bot, query, "vector")
    assert f"Index Scan using {sql.bot_index_name(alice_bot.pk, 'hnsw')}" in plan
    assert found == exact_ranking(alice_bot, query)[: len(found)]
    assert len(found) == len(SMALL_BOT_NOTES)  # the search's top_k
    packs = Chunk.objects.filter(bot=alice_bot, in_shared_index=False, text__startswith="Battery pack")
    assert set(packs.values_list("public_id", flat=True)) <= set(found)  # found through the bot's own graph
    assert services.bot_indexes_out_of_date() == []


def test_a_bot_without_its_own_graph_writes_into_the_shared_one(alice, alice_bot, thresholds):
    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 100  # above the exact limit, no own graph: the shared one
    add_notes(alice_bot, SMALL_BOT_NOTES)

    assert set(shared_flags(alice_bot).values()) == {True}
    query = "How long should I charge the battery?"
    found, statement, plan = planned(alice_bot, query, "vector")
    assert "in_shared_index" in statement
    assert "Index Scan using chunk_embedding_shared_hnsw" in plan, plan
    assert found == exact_ranking(alice_bot, query)


def test_dropping_its_own_graph_puts_its_chunks_back_into_the_shared_one_first(alice, alice_bot, thresholds):
    documents = add_notes(alice_bot, SMALL_BOT_NOTES[:11])
    add_notes(alice_bot, [f"Battery pack {n} charges in {n + 3} hours." for n in range(4)])
    assert Chunk.objects.filter(bot=alice_bot, in_shared_index=False).count() == 4

    for document in documents[:8]:  # 15 - 8 = 7 chunks: then 6, and at 5 the lower threshold drops them
        services.document_delete(document=document)
    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}
    services.document_delete(document=documents[8])
    services.document_delete(document=documents[9])

    assert state(alice_bot.pk) == {}
    assert set(shared_flags(alice_bot).values()) == {True}
    # Every chunk found through the shared graph (the exact limit lowered so the bot goes through it).
    thresholds.KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS = 2
    query = "How long does the battery pack take to charge?"
    found, _statement, plan = planned(alice_bot, query, "vector")
    assert "Index Scan using chunk_embedding_shared_hnsw" in plan, plan
    assert found == exact_ranking(alice_bot, query)
    assert len(found) == 5


def test_chunks_written_by_an_ingestion_racing_the_drop_end_up_in_the_shared_graph(alice, alice_bot, thresholds):
    import threading

    from knowledge.services.bot_indexes import chunks_skip_shared_graph

    documents = add_notes(alice_bot, SMALL_BOT_NOTES)
    assert state(alice_bot.pk) == {"hnsw": True, "gin": True}
    read, commit, errors = threading.Event(), threading.Event(), []

    def ingestion():
        # An ingestion that finds the bot's own graph valid, writes its chunk outside the shared one, and
        # commits only once the drop has started: after the sync's first pass over the bot's chunks.
        try:
            with transaction.atomic():
                skip = chunks_skip_shared_graph(bot_id=alice_bot.pk)
                Chunk.objects.create(
                    tenant=alice.tenant, bot=alice_bot, document=documents[0], position=99,
                    text="A late battery note.", embedding=[0.1] * 384, in_shared_index=not skip,
                )  # fmt: skip
                read.set()
                assert commit.wait(30)
        except BaseException as error:  # reported by the test's thread
            errors.append(error)
            read.set()
        finally:
            connection.close()

    synced = []

    def sync():
        try:
            synced.extend(services.bot_indexes_sync(bot_id=alice_bot.pk))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    writer = threading.Thread(target=ingestion)
    writer.start()
    assert read.wait(30)
    assert not errors
    assert Chunk.objects.filter(bot=alice_bot).count() == len(SMALL_BOT_NOTES)  # not committed yet
    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 100  # the bot is now too small for its own indexes
    thresholds.KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS = 50
    dropper = threading.Thread(target=sync)
    dropper.start()
    # The drop marks the graph invalid, then waits for the writer's transaction, which holds the table.
    with connection.cursor() as cursor:
        for _ in range(300):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'DROP INDEX CONCURRENTLY%%_hnsw%%' "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError("the drop never waited for the writer")
    commit.set()
    writer.join(30)
    dropper.join(60)

    assert not errors, errors
    assert "dropped hnsw" in synced
    assert state(alice_bot.pk) == {}
    late = Chunk.objects.get(bot=alice_bot, position=99)
    assert late.in_shared_index  # written outside the shared graph, put back by the drop's second pass
    assert not Chunk.objects.filter(bot=alice_bot, in_shared_index=False).exists()


def test_the_sweep_puts_back_chunks_left_outside_the_shared_graph(alice, alice_bot, thresholds):
    add_notes(alice_bot, SMALL_BOT_NOTES[:11])
    add_notes(alice_bot, SMALL_BOT_NOTES[11:])
    assert Chunk.objects.filter(bot=alice_bot, in_shared_index=False).count() == 1
    # Its own graph dropped by hand (or by a sync that died before its second pass), its size between the
    # two thresholds: nothing to build or drop, but a chunk in no graph search could use.
    thresholds.KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = 100
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX "{sql.bot_index_name(alice_bot.pk, "hnsw")}"')

    assert services.bot_indexes_out_of_date() == [alice_bot.pk]
    assert tasks.sync_all_bot_indexes.delay().get() == 1

    assert set(shared_flags(alice_bot).values()) == {True}
    assert services.bot_indexes_out_of_date() == []
    assert state(alice_bot.pk) == {"gin": True}
