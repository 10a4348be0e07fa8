"""Leads: contact details in the customer's messages, with the bot's lead capture on."""

import pytest

from bothero.testing.factories import BotFactory
from conversations.leads import extract_contact_details, find_email, find_name, find_phone
from conversations.models import Conversation, Lead
from webhooks.models import Event


@pytest.mark.parametrize(
    ("text", "name", "email", "phone"),
    [
        ("Hi, my name is john smith, email john.smith@example.com", "John Smith", "john.smith@example.com", ""),
        ("I'm Maria Garcia, call me at +1 (555) 123-4567", "Maria Garcia", "", "+1 (555) 123-4567"),
        ("This is Dr Who. Reach me at who@tardis.example", "Dr Who", "who@tardis.example", ""),
        ("my number is 5551234567", "", "", "5551234567"),
        ("I am looking for a refund", "", "", ""),
        ("I'm interested in the blue widget", "", "", ""),
        ("My order 2024-05-01 arrived broken, ref 12345678", "", "", ""),
        ("reach me at 020 7946 0958 please", "", "", "020 7946 0958"),
    ],
)
def test_it_finds_names_emails_and_phone_numbers(text, name, email, phone):
    assert (find_name(text), find_email(text), find_phone(text)) == (name, email, phone)


def test_it_only_looks_for_the_configured_fields():
    details = extract_contact_details("I'm Ann Lee, ann@example.com, +44 20 7946 0958", fields=["email"])
    assert (details.name, details.email, details.phone) == ("", "ann@example.com", "")


@pytest.fixture
def capturing_bot(alice):
    return BotFactory(tenant=alice.tenant, lead_capture={"enabled": True, "fields": ["name", "email", "phone"]})


def say(actor, bot, message, conversation_id=None):
    body = {"bot_id": bot.public_id, "message": message}
    if conversation_id:
        body["conversation_id"] = conversation_id
    response = actor.client.post("/v1/chat/completions", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["conversation_id"]


def test_contact_details_in_a_conversation_become_a_lead(alice, capturing_bot):
    conversation_id = say(alice, capturing_bot, "Hi, I'm Ann Lee.")
    assert not Lead.objects.exists()  # a name alone is not a lead yet
    say(alice, capturing_bot, "You can email me at ann.lee@example.com", conversation_id)
    lead = Lead.objects.get()
    assert (lead.name, lead.email, lead.phone) == ("Ann Lee", "ann.lee@example.com", "")
    assert lead.bot == capturing_bot
    assert lead.tenant == alice.tenant
    assert lead.message.content == "You can email me at ann.lee@example.com"
    conversation = Conversation.objects.get(public_id=conversation_id)
    assert conversation.has_lead is True
    event = Event.objects.get(type="lead.captured")
    assert event.data["id"] == lead.public_id
    assert event.data["email"] == "ann.lee@example.com"
    assert event.data["conversation_id"] == conversation_id


def test_there_is_one_lead_per_conversation_and_email(alice, capturing_bot):
    conversation_id = say(alice, capturing_bot, "ann@example.com here")
    say(alice, capturing_bot, "again, ann@example.com", conversation_id)
    assert Lead.objects.count() == 1
    say(alice, capturing_bot, "my phone is +1 555 010 2000", conversation_id)
    lead = Lead.objects.get()
    assert lead.phone == "+1 555 010 2000"
    say(alice, capturing_bot, "or my work address: ann@work.example", conversation_id)
    assert sorted(Lead.objects.values_list("email", flat=True)) == ["ann@example.com", "ann@work.example"]
    other_conversation = say(alice, capturing_bot, "ann@example.com")
    assert Lead.objects.filter(conversation__public_id=other_conversation).count() == 1
    assert Lead.objects.count() == 3
    # Created twice in the first conversation, completed once, and once in the other.
    assert Event.objects.filter(type="lead.captured").count() == 4


def test_a_phone_number_alone_starts_a_lead_that_an_email_completes(alice, capturing_bot):
    conversation_id = say(alice, capturing_bot, "Call me on +1 555 010 3000")
    say(alice, capturing_bot, "my name is bob and my email is bob@example.com", conversation_id)
    lead = Lead.objects.get()
    assert (lead.name, lead.email, lead.phone) == ("Bob", "bob@example.com", "+1 555 010 3000")


def test_nothing_is_captured_when_lead_capture_is_off(alice, alice_bot):
    say(alice, alice_bot, "I'm Ann, ann@example.com, +1 555 010 4000")
    assert not Lead.objects.exists()
    assert not Event.objects.filter(type="lead.captured").exists()
    assert not Conversation.objects.get().has_lead
