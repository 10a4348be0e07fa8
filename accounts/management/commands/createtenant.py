from django.core.management.base import BaseCommand, CommandError

from accounts.models import Plan
from accounts.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant on a plan, with its owner."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--plan", default="legend", help="Plan slug (default: legend).")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", default=None, help="Optional; lets the owner use grant_type=password.")

    def handle(self, *args, name, plan, owner_email, owner_password, **options):
        if not Plan.objects.filter(slug=plan).exists():
            slugs = ", ".join(Plan.objects.values_list("slug", flat=True))
            raise CommandError(f"Unknown plan {plan!r}. Plans: {slugs}.")
        tenant = tenant_create(name=name, plan_slug=plan, owner_email=owner_email, owner_password=owner_password)
        self.stdout.write(f"Created tenant {tenant.public_id} ({tenant.name}) on plan {plan}.")
