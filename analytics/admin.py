"""Staff admin: each tenant's usage this month against its plan's limits (read-only)."""

from django.contrib import admin
from django.utils.html import format_html_join

from analytics import selectors
from analytics.models import TenantUsage
from analytics.usage import tenant_usage_get

MB = 1024 * 1024


def used_of(used: int, limit: int | None, unit: str = "") -> str:
    """`1,234 / 50,000 (2 %)`, or `1,234 / unlimited`."""
    if limit is None:
        return f"{used:,}{unit} / unlimited"
    share = f" ({used / limit:.0%})" if limit else ""
    return f"{used:,}{unit} / {limit:,}{unit}{share}"


@admin.register(TenantUsage)
class TenantUsageAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "public_id",
        "plan",
        "status",
        "messages",
        "bots",
        "documents",
        "storage",
        "api_requests",
        "conversations",
        "leads",
    )
    list_filter = ("plan", "status")
    search_fields = ("name", "public_id")
    fields = ("name", "public_id", "plan", "status", "usage_against_plan")
    readonly_fields = fields

    def get_queryset(self, request):
        return selectors.tenant_usage_list()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="messages this month", ordering="messages_this_month")
    def messages(self, tenant):
        return used_of(tenant.messages_this_month, tenant.plan.max_messages_per_month)

    @admin.display(description="bots", ordering="bot_count")
    def bots(self, tenant):
        return used_of(tenant.bot_count, tenant.plan.max_bots)

    @admin.display(description="documents", ordering="document_count")
    def documents(self, tenant):
        return used_of(tenant.document_count, tenant.plan.max_documents)

    @admin.display(description="storage", ordering="storage_bytes")
    def storage(self, tenant):
        return used_of(round(tenant.storage_bytes / MB), tenant.plan.max_storage_mb, " MB")

    @admin.display(description="API requests this month", ordering="api_requests_this_month")
    def api_requests(self, tenant):
        return f"{tenant.api_requests_this_month:,}"

    @admin.display(description="conversations this month", ordering="conversations_this_month")
    def conversations(self, tenant):
        return f"{tenant.conversations_this_month:,}"

    @admin.display(description="leads this month", ordering="leads_this_month")
    def leads(self, tenant):
        return f"{tenant.leads_this_month:,}"

    @admin.display(description="this month against the plan")
    def usage_against_plan(self, tenant):
        # The same selector as GET /v1/analytics/usage, so staff and the tenant see the same figures.
        usage = tenant_usage_get(tenant=tenant)
        storage = usage["storage_bytes"]
        storage_limit = round(storage.limit / MB) if storage.limit is not None else None
        rows = [
            ("Messages", used_of(usage["messages"].used, usage["messages"].limit)),
            (
                "API requests",
                f"{usage['api_requests'].used:,} (limit {usage['plan']['requests_per_minute']:,} per minute)",
            ),
            ("Prompt tokens", f"{usage['prompt_tokens'].used:,}"),
            ("Completion tokens", f"{usage['completion_tokens'].used:,}"),
            ("Bots", used_of(usage["bots"].used, usage["bots"].limit)),
            ("Documents", used_of(usage["documents"].used, usage["documents"].limit)),
            ("Storage", used_of(round(storage.used / MB), storage_limit, " MB")),
            ("Conversations started", f"{usage['conversations'].used:,}"),
            ("Leads captured", f"{usage['leads'].used:,}"),
        ]
        return format_html_join("", "<div><strong>{}</strong>: {}</div>", rows)
