"""After a few real conversations through the chat API, the analytics endpoints report them."""

from knowledge import services as knowledge_services

FAQ = """# Opening hours

We're open Monday through Friday, 9 AM to 6 PM EST. On Saturdays the shop opens from 10 AM to 2 PM.

# Refunds

You can return any widget within 30 days of delivery for a full refund.
"""


def test_conversations_through_the_chat_api_show_up_in_every_report(
    alice, alice_bot, django_capture_on_commit_callbacks
):
    alice_bot.lead_capture = {"enabled": True, "fields": ["name", "email", "phone"]}
    alice_bot.save(update_fields=["lead_capture"])
    with django_capture_on_commit_callbacks(execute=True):
        knowledge_services.document_create_from_text(tenant=alice.tenant, bot=alice_bot, title="FAQ", text=FAQ)

    def say(message, conversation_id=None, end_user_id="visitor-1"):
        body = {"bot_id": alice_bot.public_id, "message": message, "metadata": {"end_user_id": end_user_id}}
        if conversation_id:
            body["conversation_id"] = conversation_id
        response = alice.client.post("/v1/chat/completions", body, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    first = say("When are you open on Saturdays?")
    assert first["sources"]
    say("What is the capital of Mongolia?", first["conversation_id"])
    say("I'm Ann, write to ann@example.com", first["conversation_id"])
    say("What is the capital of mongolia", end_user_id="visitor-2")

    overview = alice.client.get("/v1/analytics/overview").json()["current"]
    assert overview["conversations"] == 2
    assert overview["messages"] == 8
    assert overview["unique_end_users"] == 2
    assert overview["leads"] == 1
    assert overview["answered_from_knowledge_rate"] > 0
    assert overview["fallback_rate"] >= 0.5  # both Mongolia questions at least
    assert overview["prompt_tokens"] > 0
    assert overview["latency_median_ms"] is not None

    series = alice.client.get("/v1/analytics/conversations").json()
    assert series["totals"]["conversations"] == 2
    assert series["totals"]["messages"] == 8
    assert series["data"][-1]["conversations"] == 2  # today

    leads = alice.client.get("/v1/analytics/leads").json()["data"]
    assert [(lead["email"], lead["conversation_id"]) for lead in leads] == [
        ("ann@example.com", first["conversation_id"])
    ]
    assert leads[0]["message"] == "I'm Ann, write to ann@example.com"

    unanswered = alice.client.get("/v1/analytics/unanswered").json()["data"]
    assert unanswered[0]["normalized"] == "what is the capital of mongolia"
    assert unanswered[0]["count"] == 2
