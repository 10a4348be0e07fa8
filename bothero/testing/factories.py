"""factory_boy factories. One tenant flows through every SubFactory chain:
a bot's conversations and messages belong to the bot's tenant unless a test says otherwise."""

import factory
from django.contrib.auth import get_user_model

from accounts.models import Membership, Plan, Tenant
from accounts.plans import plans_seed
from bots.models import Bot
from conversations.models import Conversation, Lead, Message


def plan(slug: str) -> Plan:
    """A seeded plan. Transactional tests flush the tables, seeded rows included, so re-seed on demand."""
    found = Plan.objects.filter(slug=slug).first()
    if found is None:
        plans_seed(Plan)
        found = Plan.objects.get(slug=slug)
    return found


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    plan = factory.LazyFunction(lambda: plan("legend"))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")


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
