from django.db import migrations

# Limits are data: staff edit them in the admin. None means unlimited.
PLANS = [
    # slug, name, price cents, api_access, bots, documents, storage MB, messages/month, requests/minute
    ("free", "Free", 0, False, 1, 5, 10, 100, 20),
    ("starter", "Starter", 1900, False, 2, 50, 100, 2000, 60),
    ("pro", "Pro", 4900, False, 5, 200, 500, 10000, 120),
    ("legend", "Legend", 9900, True, 20, 1000, 2000, 50000, 600),
    ("enterprise", "Enterprise", 49900, True, None, None, None, None, 3000),
]


def seed_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for order, (slug, name, price, api, bots, docs, storage, messages, rpm) in enumerate(PLANS):
        Plan.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "monthly_price_cents": price,
                "api_access": api,
                "max_bots": bots,
                "max_documents": docs,
                "max_storage_mb": storage,
                "max_messages_per_month": messages,
                "requests_per_minute": rpm,
                "sort_order": order,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(seed_plans, migrations.RunPython.noop)]
