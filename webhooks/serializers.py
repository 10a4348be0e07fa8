from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bothero.api.serializers import HttpUrlField, StrictBooleanField, StrictCharField
from webhooks.event_types import EVENT_TYPES, SUBSCRIBABLE
from webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint


@extend_schema_field({"type": "string", "enum": SUBSCRIBABLE})
class EventTypeField(StrictCharField):
    """An event type name or "*". Membership is checked by the service (400 `unknown_event_type`)."""


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = HttpUrlField(help_text="https URL that receives the events.")
    events = serializers.ListField(
        child=EventTypeField(max_length=64),
        min_length=1,
        max_length=len(EVENT_TYPES) + 1,
        help_text='Event types to receive; ["*"] for all.',
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True)
    enabled = StrictBooleanField(required=False, default=True)


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = HttpUrlField(required=False)
    events = serializers.ListField(
        child=EventTypeField(max_length=64), min_length=1, max_length=len(EVENT_TYPES) + 1, required=False
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True)
    enabled = StrictBooleanField(
        required=False, help_text="false pauses delivery; true resumes it (and clears the failure record)."
    )


DISABLED_REASONS = [choice for choice in WebhookEndpoint.DisabledReason.values if choice]


class WebhookEndpointSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    events = serializers.ListField(child=EventTypeField())
    disabled_reason = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "object",
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
        ]

    def get_object(self, obj) -> str:
        return "webhook_endpoint"

    @extend_schema_field({"type": "string", "enum": DISABLED_REASONS, "nullable": True})
    def get_disabled_reason(self, obj):
        return obj.disabled_reason or None


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        help_text="`whsec_...`: verify signatures with it. Shown only on creation and rotation."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookEndpointDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="webhook_endpoint")
    deleted = serializers.BooleanField(default=True)


class WebhookDeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "outcome", "started_at", "duration_ms", "url", "response_status", "response_body", "error"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    webhook_id = serializers.CharField(source="endpoint.public_id")
    event_id = serializers.CharField(source="event.public_id")
    event_type = serializers.CharField(source="event.type")
    duration_ms = serializers.IntegerField(source="last_duration_ms", allow_null=True)
    next_attempt_at = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = [
            "id",
            "object",
            "webhook_id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "last_response_code",
            "duration_ms",
            "last_error",
            "last_attempt_at",
            "next_attempt_at",
            "completed_at",
            "created_at",
        ]

    def get_object(self, obj) -> str:
        return "webhook_delivery"

    @extend_schema_field(serializers.DateTimeField(allow_null=True, help_text="When the next retry is due."))
    def get_next_attempt_at(self, obj):
        if obj.status != Delivery.Status.PENDING or obj.next_attempt_at is None:
            return None
        return serializers.DateTimeField().to_representation(obj.next_attempt_at)


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    attempt_log = WebhookDeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "attempt_log"]


class WebhookEventTypeSerializer(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()


class WebhookEventTypeListSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = WebhookEventTypeSerializer(many=True)
    has_more = serializers.BooleanField(default=False)
    next_cursor = serializers.CharField(allow_null=True, default=None)
