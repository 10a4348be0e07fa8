"""Idempotent demo data: a Legend tenant "Demo", an API key and a bot trained on a small FAQ.

The key is stored only as a hash, so a fresh key is made on every run and the
previous demo keys are revoked; the command prints the new one and a curl.
The FAQ (knowledge/fixtures/demo_faq.md) is added once and ingested before the command ends.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import ApiKey, Tenant
from accounts.services import api_key_create, api_key_revoke, tenant_create
from bots.models import Bot
from bots.services import bot_create

DEMO_TENANT = "Demo"
DEMO_KEY_NAME = "Demo key"
DEMO_BOT = "Demo Support Bot"
DEMO_OWNER = "demo@bothero.local"


class Command(BaseCommand):
    help = "Create (or refresh) the demo tenant, an API key and a trained bot."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        with transaction.atomic():
            tenant = Tenant.objects.filter(name=DEMO_TENANT, memberships__user__username=DEMO_OWNER).first()
            if tenant is None:
                tenant = tenant_create(name=DEMO_TENANT, plan_slug="legend", owner_email=DEMO_OWNER)
            bot = Bot.objects.filter(tenant=tenant, name=DEMO_BOT).first()
            if bot is None:
                bot = bot_create(
                    tenant=tenant,
                    name=DEMO_BOT,
                    description="Answers questions about Acme Widgets from its FAQ.",
                    instructions="You are Acme Widgets' friendly support assistant. Answer from the knowledge base.",
                    welcome_message="Hi! Ask me about our hours, pricing, refunds or how to reach us.",
                    lead_capture={"enabled": True, "fields": ["name", "email", "phone"]},
                )
            for old in ApiKey.objects.filter(tenant=tenant, name=DEMO_KEY_NAME, revoked_at__isnull=True):
                api_key_revoke(tenant=tenant, public_id=old.public_id)
            created = api_key_create(tenant=tenant, name=DEMO_KEY_NAME)
        document = self.train_demo_bot(tenant, bot)
        self.stdout.write(f"Demo tenant: {tenant.public_id}")
        self.stdout.write(f"Demo bot:    {bot.public_id}")
        self.stdout.write(f"Demo FAQ:    {document.public_id} ({document.status})")
        self.stdout.write(f"Demo API key (shown once): {created.key}")
        self.stdout.write("Try it:")
        self.stdout.write(f'  curl -s {base_url}/v1/bots -H "Authorization: Bearer {created.key}"')
        self.stdout.write(
            f'  curl -s {base_url}/v1/chat/completions -H "Authorization: Bearer {created.key}" '
            f'-H \'Content-Type: application/json\' -d \'{{"bot_id": "{bot.public_id}", '
            f'"message": "When are you open?"}}\''
        )

    def train_demo_bot(self, tenant, bot):
        """Give the demo bot its FAQ (knowledge/fixtures/demo_faq.md), ingested and ready, once."""
        from knowledge.demo import demo_knowledge_ensure

        return demo_knowledge_ensure(tenant=tenant, bot=bot)
