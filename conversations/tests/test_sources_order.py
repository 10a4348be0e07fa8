"""A chat answer's `sources` are the passages it used, best first by the calibrated score they show."""

import pytest

from knowledge.selectors import search

from .conftest import train

pytestmark = pytest.mark.django_db


def test_sources_are_ordered_by_the_score_they_show_and_match_search(
    alice, faq_bot, django_capture_on_commit_callbacks
):
    train(
        faq_bot,
        "Shipping notes",
        "# Parcels\n\nParcels leave our warehouse every weekday at noon.\n\n"
        "# Returns by post\n\nPrint the return label from your order page and drop the parcel at any post office.",
        capture=django_capture_on_commit_callbacks,
    )

    for question in ("How long does a refund take?", "When do parcels leave?", "How do I send a return by post?"):
        response = alice.client.post(
            "/v1/chat/completions", {"bot_id": faq_bot.public_id, "message": question}, format="json"
        )
        assert response.status_code == 200, response.content
        sources = response.json()["sources"]
        assert sources
        scores = [source["score"] for source in sources]
        assert scores == sorted(scores, reverse=True), (question, scores)
        assert all(0.0 <= score <= 1.0 for score in scores)
        # The scores are search's calibrated scores, for the same passages.
        found = {p.chunk_id: p.score for p in search(tenant=alice.tenant, bot=faq_bot, query=question, top_k=10)}
        for source in sources:
            assert source["score"] == pytest.approx(found[source["chunk_id"]], abs=1e-4)
