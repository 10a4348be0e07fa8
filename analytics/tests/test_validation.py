import pytest

ENDPOINTS = ["overview", "conversations", "leads", "unanswered"]

BAD = [
    ({"start": "yesterday"}, "invalid_date", "start"),
    ({"start": "2026-02-30"}, "invalid_date", "start"),
    ({"end": "2026-13-01T00:00:00Z"}, "invalid_date", "end"),
    ({"start": "0001-01-01"}, "invalid_date", "start"),
    ({"start": "2026-03-10", "end": "2026-03-01"}, "invalid_range", "end"),
    ({"start": "2026-03-10T10:00:00Z", "end": "2026-03-10T10:00:00Z"}, "invalid_range", "end"),
    ({"start": "2025-01-01", "end": "2026-01-02"}, "range_too_long", "end"),
    ({"timezone": "Mars/Olympus_Mons"}, "unknown_timezone", "timezone"),
    ({"timezone": "../../etc/passwd"}, "unknown_timezone", "timezone"),
]
PAGED = [({"limit": "0"}, "invalid_limit", "limit"), ({"limit": "101"}, "invalid_limit", "limit")]
CASES = [(endpoint, *case) for endpoint in ENDPOINTS for case in BAD] + [
    (endpoint, *case) for endpoint in ("leads", "unanswered") for case in PAGED
]


@pytest.mark.parametrize(("endpoint", "params", "code", "param"), CASES)
def test_bad_parameters_are_a_400_in_the_envelope(alice, endpoint, params, code, param):
    response = alice.client.get(f"/v1/analytics/{endpoint}", params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert error["request_id"] == response["X-Request-Id"]


@pytest.mark.parametrize("granularity", ["minute", "DAY", "weekly"])
def test_an_unknown_granularity_is_a_400(alice, granularity):
    response = alice.client.get("/v1/analytics/conversations", {"granularity": granularity})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_granularity"


def test_hourly_series_are_limited_to_31_days(alice):
    params = {"start": "2026-01-01", "end": "2026-02-01", "granularity": "hour"}
    response = alice.client.get("/v1/analytics/conversations", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "range_too_long"
    response = alice.client.get("/v1/analytics/conversations", {**params, "end": "2026-01-31"})
    assert response.status_code == 200
    assert len(response.json()["data"]) == 31 * 24


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_another_tenants_bot_is_a_404(alice_bot, charlie, endpoint):
    response = charlie.client.get(f"/v1/analytics/{endpoint}", {"bot_id": alice_bot.public_id})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bot_not_found"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_needs_a_credential(anonymous_client, endpoint):
    assert anonymous_client.get(f"/v1/analytics/{endpoint}").status_code == 401


def test_a_full_leap_year_is_allowed(alice):
    response = alice.client.get("/v1/analytics/overview", {"start": "2028-01-01", "end": "2028-12-31"})
    assert response.status_code == 200
    assert response.json()["current"]["end"] == "2029-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("params", "start", "end"),
    [
        # A date is a whole local day: end is inclusive.
        (
            {"start": "2026-03-08", "end": "2026-03-08", "timezone": "America/New_York"},
            "2026-03-08T05:00:00Z",
            "2026-03-09T04:00:00Z",
        ),
        # A date-time without an offset is read in the time zone.
        (
            {"start": "2026-07-01T09:00", "end": "2026-07-01T17:00", "timezone": "Europe/Paris"},
            "2026-07-01T07:00:00Z",
            "2026-07-01T15:00:00Z",
        ),
        # `+02:00` sent without URL encoding arrives as a space.
        (
            {"start": "2026-07-01T09:00:00 02:00", "end": "2026-07-02T00:00:00Z"},
            "2026-07-01T07:00:00Z",
            "2026-07-02T00:00:00Z",
        ),
        # Only an end: the 30 days before it.
        ({"end": "2026-07-30"}, "2026-07-01T00:00:00Z", "2026-07-31T00:00:00Z"),
    ],
)
def test_it_reads_dates_and_times_in_the_time_zone(alice, params, start, end):
    response = alice.client.get("/v1/analytics/overview", params)
    assert response.status_code == 200, response.content
    current = response.json()["current"]
    assert (current["start"], current["end"]) == (start, end)
