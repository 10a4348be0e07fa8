"""What the bot answers: the demo FAQ's questions with their own sentence, an honest fallback, follow-ups.

The demo bot's knowledge is the shipped FAQ (knowledge/fixtures/demo_faq.md), given to the bot exactly as
`manage.py demo` does, and every question goes through the public chat API with the offline (extractive)
provider, the default.
"""

import pytest

from bothero.testing.factories import BotFactory
from conversations.models import Message
from knowledge.demo import FAQ_PATH, demo_knowledge_ensure
from knowledge.sentences import split_sentences

HOURS = "We're open Monday through Friday, 9 AM to 6 PM EST."
WEEKENDS = "We are closed on weekends and US public holidays."
FULL_REFUND = "You can return any widget within 30 days of delivery for a full refund."
REFUND_TIMING = (
    "Start a return from your order page; refunds reach your card within 5 business days of the return arriving."
)
BASIC_PRICE = "The Basic Widget costs $19."
PRO_PRICE = "The Pro Widget costs $49 and includes a two-year warranty."
SHIPPING_TIME = (
    "Standard shipping takes 3 to 5 business days and is free on orders over $75; smaller orders pay a flat $5.99."
)
SAME_DAY = "Orders placed before 2 PM EST ship the same business day."
WARRANTY = "The Pro Widget's two-year warranty covers manufacturing defects, not accidental or water damage."
CLAIM = "To make a claim, contact support with your order number."
CONTACT = "Email support@acme.example or call +1 555 0100 during business hours."
VOLUME = "Volume discounts start at 50 units: email sales@acme.example for a quote."


@pytest.fixture
def demo_bot(alice):
    bot = BotFactory(tenant=alice.tenant, name="Acme Widgets support")
    assert demo_knowledge_ensure(tenant=alice.tenant, bot=bot).status == "ready"
    return bot


def ask(client, bot, message, conversation_id=None):
    body = {"bot_id": bot.public_id, "message": message}
    if conversation_id:
        body["conversation_id"] = conversation_id
    response = client.post("/v1/chat/completions", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def quoted_sentences(content: str) -> list[str]:
    """The sentences of the answer's quotes (its "> " lines), as the FAQ writes them."""
    quotes = [line[2:] for line in content.splitlines() if line.startswith("> ")]
    assert quotes, content
    return [sentence for quote in quotes for sentence in split_sentences(quote)]


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("What are your business hours?", HOURS),
        ("When are you open?", HOURS),
        ("Are you open on weekends?", WEEKENDS),
        ("Can I get my money back if I don't like it?", FULL_REFUND),
        ("Can I get a refund?", FULL_REFUND),
        ("When will the refund reach my card?", REFUND_TIMING),
        ("How long until I see my refund?", REFUND_TIMING),
        ("How much is the Pro Widget?", PRO_PRICE),
        ("How much does the Basic Widget cost?", BASIC_PRICE),
        ("How long does delivery take?", SHIPPING_TIME),
        ("Is shipping free?", SHIPPING_TIME),
        ("When will my order ship?", SAME_DAY),
        ("What does the warranty cover?", WARRANTY),
        ("Is water damage covered?", WARRANTY),
        ("How do I make a warranty claim?", CLAIM),
        ("How can I contact you?", CONTACT),
        ("What's your phone number?", CONTACT),
        ("Do you offer bulk discounts?", VOLUME),
    ],
)
def test_a_customers_question_is_answered_with_its_own_sentence_of_the_faq(alice, demo_bot, question, sentence):
    body = ask(alice.client, demo_bot, question)

    quoted = quoted_sentences(body["content"])
    assert sentence in quoted
    # Quoted verbatim, from the one section that answers, with its citation and as the answer's only source.
    faq = " ".join(FAQ_PATH.read_text().split())
    assert all(text in faq for text in quoted)
    assert len(quoted) <= 2
    (source,) = body["sources"]
    assert body["content"].endswith(f"— Acme Widgets FAQ › {heading_of(sentence)}")
    assert source["title"] == "Acme Widgets FAQ"
    assert body["model"] == "extractive"


def heading_of(sentence: str) -> str:
    heading = None
    for line in FAQ_PATH.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif sentence[:30] in " ".join(line.split()):
            return heading
    raise AssertionError(sentence)


@pytest.mark.parametrize(
    "question",
    [
        "Is it available in black?",
        "Who is the CEO?",
        "What is the capital of Mongolia?",
        "Do you ship to Canada?",
        "Can I pay with PayPal?",
    ],
)
def test_a_question_the_faq_cannot_answer_gets_the_fallback_message_and_no_sources(alice, demo_bot, question):
    body = ask(alice.client, demo_bot, question)

    assert body["content"] == demo_bot.fallback_message
    assert body["sources"] == []
    assert Message.objects.get(public_id=body["id"]).is_fallback is True


@pytest.mark.parametrize(
    ("first", "follow_up", "sentence"),
    [
        ("How much is the Pro Widget?", "And the basic one?", BASIC_PRICE),
        ("Can I get a refund?", "How long does it take?", REFUND_TIMING),
        ("How do I contact support?", "And for sales?", "Sales and volume orders: sales@acme.example."),
    ],
)
def test_a_follow_up_question_is_answered_with_the_conversation_before_it(alice, demo_bot, first, follow_up, sentence):
    opening = ask(alice.client, demo_bot, first)

    body = ask(alice.client, demo_bot, follow_up, conversation_id=opening["conversation_id"])

    assert sentence in quoted_sentences(body["content"])


def test_a_follow_up_in_the_openai_shape_is_answered_with_the_history_the_client_sends(alice, demo_bot):
    messages = [
        {"role": "user", "content": "How much is the Pro Widget?"},
        {"role": "assistant", "content": "The Pro Widget costs $49."},
        {"role": "user", "content": "And the basic one?"},
    ]
    response = alice.client.post(
        "/v1/chat/completions", {"model": demo_bot.public_id, "messages": messages}, format="json"
    )

    assert response.status_code == 200, response.content
    assert BASIC_PRICE in response.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    "question", ["Who is the CEO?", "What is the capital of Mongolia?", "Is it available in black?"]
)
def test_a_new_question_the_faq_cannot_answer_is_not_answered_from_the_topic_before_it(alice, demo_bot, question):
    opening = ask(alice.client, demo_bot, "How much is the Pro Widget?")

    body = ask(alice.client, demo_bot, question, conversation_id=opening["conversation_id"])

    assert (body["content"], body["sources"]) == (demo_bot.fallback_message, [])


def test_a_pdfs_hard_wrapped_sentence_is_quoted_whole_and_alone(alice, django_capture_on_commit_callbacks):
    from knowledge import services as knowledge_services
    from knowledge.tests import samples

    bot = BotFactory(tenant=alice.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        knowledge_services.document_create_from_file(
            tenant=alice.tenant, bot=bot, data=samples.pdf_hard_wrapped(), filename="model-x.pdf", title="Model X"
        )
        knowledge_services.document_create_from_text(
            tenant=alice.tenant,
            bot=bot,
            title="Model Y",
            text="The Model Y heater warms a room of 20 square metres in ten minutes. It ships in April.",
        )

    body = ask(alice.client, bot, "How long does the battery last on turbo?")

    assert quoted_sentences(body["content"]) == [
        "Turbo mode doubles the fan speed and lowers the battery life to about four hours; in eco mode the "
        "battery lasts up to eleven hours."
    ]
    assert body["content"].endswith("— Model X › Model X fan (page 1)")
    assert [source["title"] for source in body["sources"]] == ["Model X"]


def test_an_answer_spanning_two_sections_quotes_both_and_nothing_unrelated(alice, django_capture_on_commit_callbacks):
    from knowledge import services as knowledge_services

    bot = BotFactory(tenant=alice.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        knowledge_services.document_create_from_text(
            tenant=alice.tenant,
            bot=bot,
            title="Account help",
            text=(
                "# Account help\n\n## Change your password\n\n"
                "To change your password, open Settings, choose Account and click Change password. "
                "Type the old password once and the new one twice.\n\n"
                "## Forgotten password\n\n"
                "If you forgot your password, click Forgot password on the sign-in page. "
                "We email you a link that lets you set a new password within one hour.\n\n"
                "## Our offices\n\n"
                "Our head office is in Berlin, next to the main railway station. Visitors are welcome on Fridays.\n"
            ),
        )

    body = ask(alice.client, bot, "How can I get a new password?")

    quoted = quoted_sentences(body["content"])
    assert "If you forgot your password, click Forgot password on the sign-in page." in quoted
    assert "To change your password, open Settings, choose Account and click Change password." in quoted
    assert not any("Berlin" in sentence for sentence in quoted)
    # Each quote is followed by its own citation, and both passages are the answer's sources.
    assert "— Account help › Forgotten password" in body["content"]
    assert "— Account help › Change your password" in body["content"]
    assert len(body["sources"]) == 2


def test_a_follow_ups_answer_goes_on_to_the_end_of_its_paragraph(alice, django_capture_on_commit_callbacks):
    # A follow-up says little by itself: its best sentence is mostly the topic's ("...you can undo the rename"),
    # and the answer is the sentence after it.
    from knowledge import services as knowledge_services

    bot = BotFactory(tenant=alice.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        knowledge_services.document_create_from_text(
            tenant=alice.tenant,
            bot=bot,
            title="Files help",
            text=(
                "# Files help\n\n## Rename a file\n\n"
                "To rename a file, select it and press F2, then type the new name and press Enter.\n\n"
                "If you renamed the wrong file, or named your file improperly, you can undo the rename. "
                "To revert the action, immediately press Ctrl+Z.\n\n"
                "## Our offices\n\n"
                "Our head office is in Berlin, next to the main railway station. Visitors are welcome on Fridays.\n"
            ),
        )
    opening = ask(alice.client, bot, "How do I rename a file?")

    body = ask(alice.client, bot, "And how do I undo that?", conversation_id=opening["conversation_id"])

    quoted = quoted_sentences(body["content"])
    assert "To revert the action, immediately press Ctrl+Z." in quoted
    assert not any("Berlin" in sentence for sentence in quoted)
    assert body["content"].endswith("— Files help › Rename a file")
