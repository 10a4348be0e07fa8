"""Idempotent demo data: a Legend tenant "Demo", an API key and a bot trained on a small FAQ.

The key is stored only as a hash. With DEBUG on (development) the plaintext is
also kept in `var/demo_api_key` (mode 0600), so the next run prints the same
key and scripts and SDK clients that use it keep working across restarts; when
that file is missing or its key no longer works, a new key is made and the
previous demo keys are revoked. With DEBUG off nothing is written and every
run makes a new key. The command prints the key and curls that work.
The FAQ (knowledge/fixtures/demo_faq.md) is added once and ingested before the command ends.
"""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.keys import hash_api_key
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
            key = remembered_demo_key(tenant)
            if key is None:
                for old in ApiKey.objects.filter(tenant=tenant, name=DEMO_KEY_NAME, revoked_at__isnull=True):
                    api_key_revoke(tenant=tenant, public_id=old.public_id)
                key = api_key_create(tenant=tenant, name=DEMO_KEY_NAME).key
                kept = demo_key_remember(key)
            else:
                kept = True
        document = self.train_demo_bot(tenant, bot)
        self.stdout.write(f"Demo tenant: {tenant.public_id}")
        self.stdout.write(f"Demo bot:    {bot.public_id}")
        self.stdout.write(f"Demo FAQ:    {document.public_id} ({document.status})")
        if kept:
            self.stdout.write(f"Demo API key (kept in {demo_key_path()} for the next runs): {key}")
        else:
            self.stdout.write(f"Demo API key (shown once): {key}")
        self.stdout.write("Try it:")
        self.stdout.write(f"  export BOTHERO_API_KEY={key} BOT_ID={bot.public_id}")
        self.stdout.write(f'  curl -s {base_url}/v1/bots -H "Authorization: Bearer {key}"')
        self.stdout.write(
            f'  curl -s {base_url}/v1/chat/completions -H "Authorization: Bearer {key}" '
            f'-H \'Content-Type: application/json\' -d \'{{"bot_id": "{bot.public_id}", '
            f'"message": "When are you open?"}}\''
        )

    def train_demo_bot(self, tenant, bot):
        """Give the demo bot its FAQ (knowledge/fixtures/demo_faq.md), ingested and ready, once."""
        from knowledge.demo import demo_knowledge_ensure

        return demo_knowledge_ensure(tenant=tenant, bot=bot)


def demo_key_path() -> Path:
    return Path(settings.VAR_DIR) / "demo_api_key"


def remembered_demo_key(tenant) -> str | None:
    """The key kept by an earlier run (development only), if it is still a live demo key of `tenant`."""
    path = demo_key_path()
    if not settings.DEBUG or not path.is_file():
        return None
    key = path.read_text().strip()
    live = ApiKey.objects.filter(
        tenant=tenant, name=DEMO_KEY_NAME, key_hash=hash_api_key(key), revoked_at__isnull=True, expires_at__isnull=True
    ).exists()
    return key if live else None


def demo_key_remember(key: str) -> bool:
    """Keep the key for the next runs, readable by this user only; never with DEBUG off (production)."""
    if not settings.DEBUG:
        return False
    path = demo_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start (no moment where another user could read it), then written.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return True
