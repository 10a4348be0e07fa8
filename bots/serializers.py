import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bothero.api.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from bots.models import DEFAULT_HANDOFF_MESSAGE, DEFAULT_HANDOFF_PHRASES, DEFAULT_MODEL, EDITABLE_FIELDS, Bot

LEAD_FIELDS = ("name", "email", "phone")
HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class RetrievalSerializer(StrictSerializer):
    top_k = StrictIntegerField(min_value=1, max_value=50, default=5)
    min_score = StrictFloatField(min_value=0.0, max_value=1.0, default=0.0)


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "enum": list(LEAD_FIELDS)}, "maxItems": 3, "uniqueItems": True}
)
class LeadFieldsField(serializers.ListField):
    """The lead fields to capture, each at most once."""


class LeadCaptureSerializer(StrictSerializer):
    enabled = StrictBooleanField(default=False)
    fields = LeadFieldsField(
        child=serializers.ChoiceField(choices=LEAD_FIELDS), default=list(LEAD_FIELDS), max_length=3
    )

    def validate_fields(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each field may be listed once.", code="invalid_duplicate")
        return value


@extend_schema_field({"type": "string", "pattern": "^#[0-9A-Fa-f]{6}$"})
class ColorField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)


class WidgetSerializer(StrictSerializer):
    """The web chat widget's look: accent colour, launcher corner and launcher text."""

    color = ColorField(default="#2563eb", max_length=7, help_text="Accent colour, `#rrggbb`.")
    position = serializers.ChoiceField(choices=["right", "left"], default="right", help_text="Bottom corner.")
    launcher_text = StrictCharField(max_length=40, default="Chat with us", help_text="The launcher button's text.")

    def validate_color(self, value):
        if not HEX_COLOR.fullmatch(value):
            raise serializers.ValidationError("A colour as #rrggbb, such as #2563eb.", code="invalid_color")
        return value


class HandoffSerializer(StrictSerializer):
    enabled = StrictBooleanField(
        default=False, help_text="Whether phrases and fallbacks hand the conversation to a person."
    )
    phrases = serializers.ListField(
        child=StrictCharField(max_length=100),
        default=list(DEFAULT_HANDOFF_PHRASES),
        max_length=50,
        help_text="A customer message containing one of these (case and spacing ignored) asks for a person.",
    )
    after_fallbacks = StrictIntegerField(
        min_value=1,
        max_value=20,
        allow_null=True,
        default=None,
        help_text="Hand off after this many fallback answers in a row (null: never).",
    )
    message = StrictCharField(
        max_length=2000, default=DEFAULT_HANDOFF_MESSAGE, help_text="What the bot says when it hands off."
    )


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
    widget = WidgetSerializer(required=False)
    handoff = HandoffSerializer(required=False)
    status = serializers.ChoiceField(choices=Bot.Status.choices, required=False)


class BotSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    retrieval = RetrievalSerializer()
    lead_capture = LeadCaptureSerializer()
    widget = WidgetSerializer()
    handoff = HandoffSerializer()

    class Meta:
        model = Bot
        fields = ["id", "object", *EDITABLE_FIELDS, "created_at", "updated_at"]

    def get_object(self, obj) -> str:
        return "bot"


class PublicHandoffSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(
        default=False, help_text="Whether the bot hands conversations to a person (the widget offers to ask for one)."
    )


class BotPublicSerializer(serializers.ModelSerializer):
    """What a visitor's browser may know of a bot: no instructions, model or retrieval settings, nor the handoff
    phrases."""

    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    lead_capture = LeadCaptureSerializer()
    widget = WidgetSerializer()
    handoff = PublicHandoffSerializer()

    class Meta:
        model = Bot
        fields = ["id", "object", "name", "welcome_message", "lead_capture", "widget", "handoff", "status"]

    def get_object(self, obj) -> str:
        return "bot.public"


class BotDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="bot")
    deleted = serializers.BooleanField(default=True)
