from rest_framework import serializers

from bothero.api.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from bots.models import DEFAULT_MODEL, EDITABLE_FIELDS, Bot

LEAD_FIELDS = ("name", "email", "phone")


class RetrievalSerializer(StrictSerializer):
    top_k = StrictIntegerField(min_value=1, max_value=50, default=5)
    min_score = StrictFloatField(min_value=0.0, max_value=1.0, default=0.0)


class LeadCaptureSerializer(StrictSerializer):
    enabled = StrictBooleanField(default=False)
    fields = serializers.ListField(
        child=serializers.ChoiceField(choices=LEAD_FIELDS), default=list(LEAD_FIELDS), max_length=3
    )

    def validate_fields(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each field may be listed once.", code="invalid_duplicate")
        return value


class BotInputSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    description = StrictCharField(max_length=2000, required=False, allow_blank=True)
    instructions = StrictCharField(max_length=20000, required=False, allow_blank=True, help_text="The system prompt.")
    model = StrictCharField(max_length=100, required=False, default=DEFAULT_MODEL)
    temperature = StrictFloatField(min_value=0.0, max_value=2.0, required=False)
    max_tokens = StrictIntegerField(min_value=1, max_value=32768, required=False)
    welcome_message = StrictCharField(max_length=2000, required=False, allow_blank=True)
    fallback_message = StrictCharField(max_length=2000, required=False)
    retrieval = RetrievalSerializer(required=False)
    lead_capture = LeadCaptureSerializer(required=False)
    status = serializers.ChoiceField(choices=Bot.Status.choices, required=False)


class BotSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    retrieval = RetrievalSerializer()
    lead_capture = LeadCaptureSerializer()

    class Meta:
        model = Bot
        fields = ["id", "object", *EDITABLE_FIELDS, "created_at", "updated_at"]

    def get_object(self, obj) -> str:
        return "bot"


class BotDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="bot")
    deleted = serializers.BooleanField(default=True)
