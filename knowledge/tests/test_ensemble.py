"""The embedding ensemble: every chunk also gets bge-small-en's vector, and search averages both models' similarity."""

import numpy as np
import pytest

from knowledge.conf import auxiliary_embedder, configured_embedder
from knowledge.embeddings import BGE_SMALL
from knowledge.models import Chunk
from knowledge.selectors import AUX_WEIGHT, QueryEmbedding, query_embeddings, search
from knowledge.services import embedding_input

NOTES = [
    "Charge the battery for two hours before the first use.",
    "Refunds are paid back to your card within 14 days.",
    "The screen turns off after five minutes without input; change it under Power.",
]


def cosine(a, b) -> float:
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def shown(similarity: float) -> float:
    """A similarity as passages show it (clipped to 0..1)."""
    return min(max(similarity, 0.0), 1.0)


@pytest.fixture
def notes_bot(alice_bot, add_text):
    for n, note in enumerate(NOTES):
        add_text(alice_bot, f"Note {n}", note)
    return alice_bot


def test_ingestion_stores_each_chunks_second_vector_from_bge_small(notes_bot):
    (chunk, *_) = Chunk.objects.filter(bot=notes_bot).order_by("id")
    text = embedding_input(chunk)

    assert chunk.embedding_aux is not None
    assert cosine(chunk.embedding_aux, auxiliary_embedder().embed([text])[0]) > 0.999
    assert cosine(chunk.embedding, configured_embedder().embed([text])[0]) > 0.999
    assert cosine(chunk.embedding_aux, chunk.embedding) < 0.9  # another model, not a copy


def test_a_question_gets_bge_smalls_vector_with_its_query_instruction():
    question = "How long do I charge it?"

    embedded = query_embeddings(question)

    assert cosine(embedded.vector, configured_embedder().embed([question])[0]) > 0.999
    instructed = auxiliary_embedder().embed([BGE_SMALL.query_instruction + question])[0]
    assert cosine(embedded.aux, instructed) > 0.999
    assert cosine(embedded.aux, auxiliary_embedder().embed([question])[0]) < 0.999


def test_search_scores_passages_with_the_mean_of_both_models_similarities(alice, notes_bot):
    query = "My display goes dark too quickly"
    embedded = query_embeddings(query)

    passages = search(tenant=alice.tenant, bot=notes_bot, query=query, top_k=3, min_score=0.0)

    chunks = {chunk.public_id: chunk for chunk in Chunk.objects.filter(bot=notes_bot)}
    assert len(passages) == 3
    for passage in passages:
        chunk = chunks[passage.chunk_id]
        expected = (1 - AUX_WEIGHT) * cosine(chunk.embedding, embedded.vector) + AUX_WEIGHT * cosine(
            chunk.embedding_aux, embedded.aux
        )
        assert passage.similarity == pytest.approx(shown(expected), abs=1e-4)
        assert passage.similarity != pytest.approx(cosine(chunk.embedding, embedded.vector), abs=1e-3)


def test_a_chunk_without_the_second_vector_is_still_found_by_the_first_models_similarity(alice, notes_bot):
    # A document embedded before the ensemble, until the backfill gives its chunks the second vector.
    Chunk.objects.filter(bot=notes_bot).update(embedding_aux=None)
    query = "My display goes dark too quickly"
    embedded = query_embeddings(query)

    passages = search(tenant=alice.tenant, bot=notes_bot, query=query, top_k=3, min_score=0.0)

    chunks = {chunk.public_id: chunk for chunk in Chunk.objects.filter(bot=notes_bot)}
    assert passages[0].text == NOTES[2]
    for passage in passages:
        first_model = cosine(chunks[passage.chunk_id].embedding, embedded.vector)
        assert passage.similarity == pytest.approx(shown(first_model), abs=1e-4)


def test_a_query_given_as_the_first_models_vector_alone_gets_the_second_computed(alice, notes_bot):
    query = "How long does a refund take?"
    both = query_embeddings(query)

    with_both = search(tenant=alice.tenant, bot=notes_bot, query=query, query_vector=both)
    with_first = search(tenant=alice.tenant, bot=notes_bot, query=query, query_vector=both.vector)
    without_second = search(tenant=alice.tenant, bot=notes_bot, query=query, query_vector=QueryEmbedding(both.vector))

    assert with_first == with_both
    assert [p.similarity for p in without_second] != [p.similarity for p in with_both]
