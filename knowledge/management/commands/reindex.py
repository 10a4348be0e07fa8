"""`manage.py reindex --bot ID | --all`: queue documents for ingestion again (e.g. after changing the embedding model)."""

from django.core.management.base import BaseCommand, CommandError

from bots.models import Bot
from knowledge import services
from knowledge.models import Document


class Command(BaseCommand):
    help = "Queue documents for ingestion again: one bot's (--bot bot_...) or every document (--all)."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--bot", metavar="BOT_ID", help="The public id of the bot (bot_...).")
        target.add_argument("--all", action="store_true", help="Every document of every tenant.")

    def handle(self, *args, bot=None, all=False, **options):
        documents = Document.objects.order_by("pk")
        if bot:
            documents = documents.filter(bot__public_id=bot)
            if not Bot.objects.filter(public_id=bot).exists():
                raise CommandError(f"No such bot: {bot}")
        count = 0
        for document in documents.iterator():
            services.document_reindex(document=document)
            count += 1
        self.stdout.write(f"Queued {count} document(s) for reindexing.")
