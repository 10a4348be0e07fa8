"""factory_boy factories. One tenant flows through every SubFactory chain:
a bot's conversations and messages belong to the bot's tenant unless a test says otherwise."""

from functools import lru_cache

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from accounts.models import ApiKey, Membership, Plan, Tenant
from accounts.plans import plans_seed
from accounts.services import api_key_create
from bots.models import Bot
from conversations.models import Conversation, Lead, Message
from knowledge.models import Document
from webhooks.models import Delivery, Event, WebhookEndpoint
from webhooks.signing import secret_generate


def plan(slug: str) -> Plan:
    """A seeded plan. Transactional tests flush the tables, seeded rows included, so re-seed on demand."""
    found = Plan.objects.filter(slug=slug).first()
    if found is None:
        plans_seed(Plan)
        found = Plan.objects.get(slug=slug)
    return found


TEST_PASSWORD = "correct horse battery staple"


@lru_cache(maxsize=1)
def test_password_hash() -> str:
    """The real hasher's hash of TEST_PASSWORD, computed once: hashing per user would slow every test."""
    return make_password(TEST_PASSWORD)


class PlanFactory(factory.django.DjangoModelFactory):
    """A custom plan with API access (small limits are set per test)."""

    class Meta:
        model = Plan

    slug = factory.Sequence(lambda n: f"custom-{n}")
    name = factory.Sequence(lambda n: f"Custom {n}")
    monthly_price_cents = 9900
    api_access = True
    requests_per_minute = 600
    sort_order = 100


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    plan = factory.LazyFunction(lambda: plan("legend"))


class UserFactory(factory.django.DjangoModelFactory):
    """A user whose password is TEST_PASSWORD."""

    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.LazyFunction(test_password_hash)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER


class BotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bot

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Bot {n}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    bot = factory.SubFactory(BotFactory)
    tenant = factory.SelfAttribute("bot.tenant")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    bot = factory.SelfAttribute("conversation.bot")
    tenant = factory.SelfAttribute("conversation.tenant")
    role = Message.Role.USER
    content = factory.Faker("sentence")


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    conversation = factory.SubFactory(ConversationFactory)
    bot = factory.SelfAttribute("conversation.bot")
    tenant = factory.SelfAttribute("conversation.tenant")
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"lead{n}@example.com")


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """A key made by `accounts.services.api_key_create` (the only way to get a usable one): the row, with the
    plaintext key, shown once, as `.key` (the row's own `signing_secret` derives the signing secret)."""

    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"key {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        created = api_key_create(**kwargs)
        created.api_key.key = created.key
        return created.api_key


class DocumentFactory(factory.django.DjangoModelFactory):
    """A document row of the bot's tenant (queued; no file, nothing ingested: tests ingest through services)."""

    class Meta:
        model = Document

    bot = factory.SubFactory(BotFactory)
    tenant = factory.SelfAttribute("bot.tenant")
    title = factory.Sequence(lambda n: f"Document {n}")
    source_type = Document.SourceType.TEXT


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    tenant = factory.SubFactory(TenantFactory)
    url = "https://example.com/hooks"
    events = factory.LazyFunction(lambda: ["*"])
    secret = factory.LazyFunction(secret_generate)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    tenant = factory.SubFactory(TenantFactory)
    type = "bot.created"
    data = factory.LazyFunction(lambda: {"id": "bot_123", "object": "bot"})


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A delivery of an event of the endpoint's tenant (the model's defaults otherwise: pending, not due)."""

    class Meta:
        model = Delivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    event = factory.SubFactory(EventFactory, tenant=factory.SelfAttribute("..endpoint.tenant"))
