"""The plan tiers the platform starts with. After seeding they are data, edited in the admin."""

# slug, name, price cents, api_access, bots, documents, storage MB, messages/month, requests/minute
# (None means unlimited.) Legend, $99/mo, is the first tier with API access.
PLANS = [
    ("free", "Free", 0, False, 1, 5, 10, 100, 20),
    ("starter", "Starter", 1900, False, 2, 50, 100, 2000, 60),
    ("pro", "Pro", 4900, False, 5, 200, 500, 10000, 120),
    ("legend", "Legend", 9900, True, 20, 1000, 2000, 50000, 600),
    ("enterprise", "Enterprise", 49900, True, None, None, None, None, 3000),
]


def plans_seed(plan_model) -> None:
    """Create the plans that do not exist yet (never overwrites staff edits)."""
    for order, (slug, name, price, api, bots, docs, storage, messages, rpm) in enumerate(PLANS):
        plan_model.objects.get_or_create(
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
