import httpx
import pytest

from bothero.testing.processes import uvicorn_server
from conftest import make_actor


@pytest.mark.slow
def test_uvicorn_serves_the_api_from_the_test_database(transactional_db):
    actor = make_actor()
    with uvicorn_server() as base_url:
        response = httpx.get(f"{base_url}/v1/bots", headers={"Authorization": f"Bearer {actor.key}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"object": "list", "data": [], "has_more": False, "next_cursor": None}
    assert response.headers["X-Request-Id"].startswith("req_")
    assert response.headers["X-RateLimit-Limit"] == str(actor.tenant.plan.requests_per_minute)
