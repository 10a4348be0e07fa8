"""Citation markers renumbered as a stream passes: [k] in the answer is sources[k-1]."""

from conversations.citations import CitationRenumberer


def test_markers_split_across_deltas_are_renumbered_in_first_citation_order():
    citations = CitationRenumberer(passage_count=3)
    deltas = ["Saturdays open at 10 [", "3", "] and refunds take 5 days [1][", "3]. See [", "7] or [2, 3", "]."]
    text = "".join(citations.feed(delta) for delta in deltas) + citations.flush()
    assert text == "Saturdays open at 10 [1] and refunds take 5 days [2][1]. See [7] or [3, 1]."
    assert citations.cited == [3, 1, 2]
    assert citations.cited_passages(["a", "b", "c"]) == ["c", "a", "b"]


def test_a_bracket_that_opens_no_marker_is_given_back_at_the_end():
    citations = CitationRenumberer(passage_count=2)
    assert citations.feed("Prices [") == "Prices "
    assert citations.flush() == "["
    assert citations.cited_passages(["a", "b"]) == ["a", "b"]
