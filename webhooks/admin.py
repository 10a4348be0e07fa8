"""Staff admin for webhook endpoints, deliveries (with their attempts) and the event outbox.

Secrets are never shown. Enabling/disabling and redelivery go through the
services, so they resume waiting deliveries and queue work after commit.
"""

from django.contrib import admin, messages

from bothero.errors import ApplicationError
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("public_id", "tenant", "url", "enabled", "disabled_reason", "failing_since", "created_at")
    list_filter = ("enabled", "disabled_reason")
    search_fields = ("public_id", "url", "tenant__name", "tenant__public_id")
    list_select_related = ("tenant",)
    fields = (
        "public_id",
        "tenant",
        "url",
        "events",
        "description",
        "enabled",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "secret_rotated_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ("enable_endpoints", "disable_endpoints")

    def has_add_permission(self, request):
        # Endpoints are created through the API, which checks the URL and issues the secret.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Enable selected endpoints (resumes their waiting deliveries)")
    def enable_endpoints(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_update(endpoint=endpoint, enabled=True)
        self.message_user(request, f"Enabled {queryset.count()} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Disable selected endpoints")
    def disable_endpoints(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_update(endpoint=endpoint, enabled=False)
        self.message_user(request, f"Disabled {queryset.count()} endpoint(s).", messages.SUCCESS)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "outcome", "started_at", "duration_ms", "response_status", "error", "response_body", "url")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "endpoint",
        "event_type",
        "status",
        "attempts",
        "last_response_code",
        "last_duration_ms",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("public_id", "event__public_id", "endpoint__public_id", "endpoint__url")
    list_select_related = ("endpoint", "event")
    fields = (
        "public_id",
        "endpoint",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "queued_at",
        "last_response_code",
        "last_duration_ms",
        "last_error",
        "last_attempt_at",
        "completed_at",
        "created_at",
    )
    readonly_fields = fields
    inlines = (DeliveryAttemptInline,)
    actions = ("redeliver",)

    def has_add_permission(self, request):
        return False

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.action(description="Redeliver selected deliveries now")
    def redeliver(self, request, queryset):
        redelivered = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                services.webhook_delivery_retry(delivery=delivery)
                redelivered += 1
            except ApplicationError as exc:
                self.message_user(request, f"{delivery.public_id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Queued {redelivered} redelivery(ies).", messages.SUCCESS)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("public_id", "tenant", "type", "created_at", "dispatched_at")
    list_filter = ("type",)
    search_fields = ("public_id", "tenant__name", "tenant__public_id")
    list_select_related = ("tenant",)
    fields = ("public_id", "tenant", "type", "data", "created_at", "dispatched_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
