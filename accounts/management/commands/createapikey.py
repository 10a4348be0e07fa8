from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it (the only time it is shown)."

    def add_arguments(self, parser):
        parser.add_argument("tenant_id", help="The tenant's id (ten_...).")
        parser.add_argument("--name", default="CLI key")
        parser.add_argument("--require-signature", action="store_true")

    def handle(self, *args, tenant_id, name, require_signature, **options):
        tenant = Tenant.objects.filter(public_id=tenant_id).first()
        if tenant is None:
            raise CommandError(f"No tenant with id {tenant_id!r}.")
        created = api_key_create(tenant=tenant, name=name, require_signature=require_signature)
        self.stdout.write(f"API key ({created.api_key.public_id}): {created.key}")
        if created.signing_secret:
            self.stdout.write(f"Signing secret: {created.signing_secret}")
        self.stdout.write("Store it now: it is not shown again.")
