"""Cursor pagination: newest first, the list shape, limits, and stability while rows are added."""

import pytest

from bothero.api.pagination import CURSOR_POSITIONS, decode_cursor, encode_cursor
from bothero.testing.factories import BotFactory

pytestmark = pytest.mark.django_db


def page(client, **params):
    response = client.get("/v1/bots", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_list_shape_is_object_data_has_more_next_cursor(alice):
    body = page(alice.client)
    assert body == {"object": "list", "data": [], "has_more": False, "next_cursor": None}


def test_pages_are_newest_first_and_end_without_a_cursor(alice):
    bots = [BotFactory(tenant=alice.tenant).public_id for _ in range(5)]
    first = page(alice.client, limit=2)
    assert [b["id"] for b in first["data"]] == bots[::-1][:2]
    assert first["has_more"] is True
    second = page(alice.client, limit=2, cursor=first["next_cursor"])
    third = page(alice.client, limit=2, cursor=second["next_cursor"])
    assert [b["id"] for b in second["data"] + third["data"]] == bots[::-1][2:]
    assert third["has_more"] is False
    assert third["next_cursor"] is None


def test_paging_stays_stable_while_rows_are_added(alice):
    original = [BotFactory(tenant=alice.tenant).public_id for _ in range(7)]
    seen = []
    body = page(alice.client, limit=3)
    seen += [b["id"] for b in body["data"]]
    while body["has_more"]:
        # New rows arrive between pages: they are newer than the cursor, so they appear on no later page.
        BotFactory.create_batch(2, tenant=alice.tenant)
        body = page(alice.client, limit=3, cursor=body["next_cursor"])
        seen += [b["id"] for b in body["data"]]
    assert seen == original[::-1]  # no duplicates, no gaps, same order


def test_a_page_never_shows_another_tenants_rows(alice, charlie):
    BotFactory.create_batch(3, tenant=charlie.tenant)
    mine = BotFactory(tenant=alice.tenant)
    assert [b["id"] for b in page(alice.client, limit=100)["data"]] == [mine.public_id]


def test_the_default_limit_is_20_and_the_largest_is_100(alice):
    BotFactory.create_batch(21, tenant=alice.tenant)
    assert len(page(alice.client)["data"]) == 20
    assert len(page(alice.client, limit=100)["data"]) == 21


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", "", "²", "٣"])
def test_a_limit_outside_1_to_100_is_a_400(alice, limit):
    response = alice.client.get("/v1/bots", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_limit"
    assert response.json()["error"]["param"] == "limit"


@pytest.mark.parametrize("cursor", ["eyJhZnRlciI6ICJ4In0", "!!!", "", "abc-def", "12345678901", "ab\n"])
def test_a_cursor_outside_the_documented_pattern_is_a_400(alice, cursor):
    response = alice.client.get("/v1/bots", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
    assert response.json()["error"]["param"] == "cursor"


@pytest.mark.parametrize("cursor", ["0", "garbage", "zzzzzzzzzz"])
def test_any_cursor_the_schema_allows_is_accepted(alice, cursor):
    # The OpenAPI pattern is exactly what the server takes: schemathesis holds both to it.
    BotFactory(tenant=alice.tenant)
    response = alice.client.get("/v1/bots", {"cursor": cursor})
    assert response.status_code == 200, response.json()


def test_the_cursor_pattern_is_documented(alice):
    schema = alice.client.get("/v1/openapi.json").json()
    cursor = next(p for p in schema["paths"]["/v1/bots"]["get"]["parameters"] if p["name"] == "cursor")
    assert cursor["schema"]["pattern"] == "^[0-9A-Za-z]{1,10}$"


def test_a_cursor_does_not_show_the_row_position():
    # Primary keys are shared by every tenant: consecutive positions must not give neighbouring cursors,
    # or two cursors would tell a client how many rows the whole platform created in between.
    cursors = [encode_cursor(position) for position in range(1, 201)]
    assert len(set(cursors)) == 200
    assert sorted(cursors) != cursors
    assert not any(cursor.lstrip("0") == str(position) for position, cursor in enumerate(cursors, start=1))
    assert sum(len(cursor) >= 9 for cursor in cursors) > 190  # small positions do not make short cursors


@pytest.mark.parametrize("position", [0, 1, 2, 61, 62, 12345, 2**31, 2**40 + 7, CURSOR_POSITIONS - 1])
def test_a_cursor_decodes_to_the_position_it_was_made_from(position):
    assert decode_cursor(encode_cursor(position)) == position


def test_every_pattern_valid_cursor_decodes_to_a_position_that_encodes_back_to_it():
    for cursor in ["0", "1", "K9", "garbage", "zzzzzzzzzz", "ZZZZZZZZZZ", "0000000001"]:
        position = decode_cursor(cursor)
        assert 0 <= position < CURSOR_POSITIONS
        assert encode_cursor(position) == (cursor.lstrip("0") or "0")  # leading zeros are not written


def test_the_cursor_key_comes_from_the_secret_key(settings):
    before = encode_cursor(42)
    settings.SECRET_KEY = "another-secret"
    assert encode_cursor(42) != before
    assert decode_cursor(encode_cursor(42)) == 42
