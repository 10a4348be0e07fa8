"""`manage.py demo` gives the demo bot the FAQ shipped in knowledge/fixtures/demo_faq.md, ready to answer."""

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Tenant
from knowledge.models import Document
from knowledge.selectors import search

pytestmark = pytest.mark.django_db


def test_the_demo_bot_answers_from_its_faq_and_running_the_demo_again_keeps_one_copy():
    call_command("demo", stdout=StringIO())
    out = StringIO()
    call_command("demo", stdout=out)

    tenant = Tenant.objects.get(name="Demo")
    (document,) = Document.objects.filter(tenant=tenant)
    assert document.status == "ready"
    assert document.title == "Acme Widgets FAQ"
    assert document.filename == "demo_faq.md"
    assert f"{document.public_id} (ready)" in out.getvalue()
    bot = document.bot
    for question, heading in [
        ("When are you open?", "Business hours"),
        ("How much is the Pro Widget?", "Pricing"),
        ("Can I get a refund?", "Refunds and returns"),
        ("How do I contact you?", "Contact"),
    ]:
        assert search(tenant=tenant, bot=bot, query=question, top_k=1)[0].heading == heading, question


def test_an_older_faq_of_the_demo_bot_gives_way_to_the_shipped_one(add_text):
    call_command("demo", stdout=StringIO())
    tenant = Tenant.objects.get(name="Demo")
    bot = tenant.bots.get()
    Document.objects.filter(tenant=tenant).delete()
    add_text(bot, "Acme Widgets FAQ", "An old FAQ text.")

    call_command("demo", stdout=StringIO())

    (document,) = Document.objects.filter(tenant=tenant)
    assert (document.filename, document.status) == ("demo_faq.md", "ready")
