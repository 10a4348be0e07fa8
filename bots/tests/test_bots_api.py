from bots.models import Bot
from webhooks.models import Event


def test_it_creates_a_bot_and_emits_bot_created(alice):
    response = alice.client.post("/v1/bots", {"name": "Support"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("bot_")
    assert body["model"] == "gpt-oss-120b"
    assert body["retrieval"] == {"top_k": 5, "min_score": 0.0}
    assert Event.objects.filter(tenant=alice.tenant, type="bot.created", data__id=body["id"]).exists()


def test_an_outsider_gets_404_for_a_bot_on_every_endpoint(alice_bot, charlie):
    url = f"/v1/bots/{alice_bot.public_id}"
    for method in ("get", "patch", "delete"):
        response = getattr(charlie.client, method)(url, {"name": "x"} if method == "patch" else None, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "bot_not_found"
    assert Bot.objects.filter(pk=alice_bot.pk, name=alice_bot.name).exists()
