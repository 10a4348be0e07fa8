"""Validation and representation for the chat endpoints (no side effects here)."""

from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from bothero.api.serializers import (
    NOT_BLANK_PATTERN,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictQueryBooleanField,
    StrictSerializer,
)
from bothero.errors import ValidationError
from conversations.models import Conversation, Lead, Message

MAX_METADATA_KEYS = 32
MAX_METADATA_VALUE_CHARS = 500


def validate_metadata(value: dict) -> dict:
    if len(value) > MAX_METADATA_KEYS:
        raise serializers.ValidationError(f"metadata holds at most {MAX_METADATA_KEYS} keys.")
    for key, item in value.items():
        if len(str(key)) > 64:
            raise serializers.ValidationError("metadata keys are at most 64 characters.")
        if not isinstance(item, (str, int, float, bool)) and item is not None:
            raise serializers.ValidationError("metadata values must be strings, numbers, booleans or null.")
        if isinstance(item, str) and len(item) > MAX_METADATA_VALUE_CHARS:
            raise serializers.ValidationError(f"metadata values are at most {MAX_METADATA_VALUE_CHARS} characters.")
    return value


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_METADATA_KEYS,
        "additionalProperties": {
            "nullable": True,
            "anyOf": [
                {"type": "string", "maxLength": MAX_METADATA_VALUE_CHARS},
                {"type": "number"},
                {"type": "boolean"},
            ],
        },
        "description": f"Your own key/values: at most {MAX_METADATA_KEYS} keys of at most 64 characters; "
        f"values are strings (at most {MAX_METADATA_VALUE_CHARS} characters), numbers, booleans or null.",
    }
)
class ChatMetadataField(serializers.DictField):
    """Checked by `validate_metadata` (key lengths too, which OpenAPI 3.0 cannot state)."""


def check_message_length(text: str, param: str) -> str:
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(text) > limit:
        raise ValidationError(
            f"The message is {len(text)} characters; the limit is {limit}.", code="message_too_long", param=param
        )
    return text


# --- output --------------------------------------------------------------------------
# The serializers below document the shapes (OpenAPI) and render lists; the chat hot path
# (responses and event data, several per message) renders with the plain functions next to
# them, which are tested to give the same output.


def iso_datetime(value) -> str | None:
    """A datetime as DRF renders it (ISO 8601, UTC as `Z`)."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class SourceSerializer(serializers.Serializer):
    document_id = serializers.CharField(allow_null=True, help_text="null for a curated answer.")
    title = serializers.CharField(help_text="The document's title, or the curated answer's question.")
    chunk_id = serializers.CharField(allow_null=True, help_text="null for a curated answer.")
    score = serializers.FloatField(help_text="Cosine similarity to the question.")
    snippet = serializers.CharField(help_text="The passage, or the curated wording that matched.")
    answer_id = serializers.CharField(
        required=False, help_text="Only on a curated answer's source: its id (`ans_...`, `/v1/knowledge/answers`)."
    )


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


def usage_of(message: Message) -> dict:
    return {
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "total_tokens": message.prompt_tokens + message.completion_tokens,
    }


class FeedbackSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=Message.Feedback.choices, allow_null=True)
    comment = serializers.CharField(allow_blank=True)


class MessageSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    conversation_id = serializers.CharField(source="conversation.public_id")
    bot_id = serializers.CharField(source="bot.public_id")
    sources = SourceSerializer(many=True)
    usage = serializers.SerializerMethodField()
    feedback = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "object",
            "conversation_id",
            "bot_id",
            "role",
            "content",
            "sources",
            "usage",
            "model",
            "latency_ms",
            "status",
            "is_fallback",
            "feedback",
            "created_at",
        ]

    def get_object(self, obj) -> str:
        return "message"

    @extend_schema_field(UsageSerializer)
    def get_usage(self, obj):
        return usage_of(obj)

    @extend_schema_field(FeedbackSerializer(allow_null=True))
    def get_feedback(self, obj):
        if obj.feedback_rating is None and not obj.feedback_comment:
            return None
        return {"rating": obj.feedback_rating, "comment": obj.feedback_comment}


def message_data(message: Message) -> dict:
    """`MessageSerializer(message).data`, faster."""
    feedback = None
    if message.feedback_rating is not None or message.feedback_comment:
        feedback = {"rating": message.feedback_rating, "comment": message.feedback_comment}
    return {
        "id": message.public_id,
        "object": "message",
        "conversation_id": message.conversation.public_id,
        "bot_id": message.bot.public_id,
        "role": message.role,
        "content": message.content,
        "sources": message.sources,
        "usage": usage_of(message),
        "model": message.model,
        "latency_ms": message.latency_ms,
        "status": message.status,
        "is_fallback": message.is_fallback,
        "feedback": feedback,
        "created_at": iso_datetime(message.created_at),
    }


class ConversationSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    bot_id = serializers.CharField(source="bot.public_id")

    class Meta:
        model = Conversation
        fields = [
            "id",
            "object",
            "bot_id",
            "end_user_id",
            "metadata",
            "message_count",
            "has_lead",
            "status",
            "handoff_reason",
            "status_changed_at",
            "last_message_at",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "status": {"help_text": "`bot` (the bot answers), `handoff` (a person answers) or `closed`."},
            "handoff_reason": {
                "help_text": "Why it was handed off: `phrase`, `requested`, `fallbacks` or `api` (empty: never)."
            },
        }

    def get_object(self, obj) -> str:
        return "conversation"


def conversation_data(conversation: Conversation) -> dict:
    """`ConversationSerializer(conversation).data`, faster."""
    return {
        "id": conversation.public_id,
        "object": "conversation",
        "bot_id": conversation.bot.public_id,
        "end_user_id": conversation.end_user_id,
        "metadata": conversation.metadata,
        "message_count": conversation.message_count,
        "has_lead": conversation.has_lead,
        "status": conversation.status,
        "handoff_reason": conversation.handoff_reason,
        "status_changed_at": iso_datetime(conversation.status_changed_at),
        "last_message_at": iso_datetime(conversation.last_message_at),
        "created_at": iso_datetime(conversation.created_at),
        "updated_at": iso_datetime(conversation.updated_at),
    }


class ConversationDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="conversation")
    deleted = serializers.BooleanField(default=True)


@extend_schema_serializer(component_name="CapturedLead")  # analytics has its own "Lead" (with the message)
class LeadSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    bot_id = serializers.CharField(source="bot.public_id")
    conversation_id = serializers.CharField(source="conversation.public_id")
    message_id = serializers.CharField(source="message.public_id", allow_null=True, default=None)
    end_user_id = serializers.CharField(
        source="conversation.end_user_id", help_text="The conversation's end user (a verified widget user's id)."
    )

    class Meta:
        model = Lead
        fields = [
            "id",
            "object",
            "bot_id",
            "conversation_id",
            "message_id",
            "end_user_id",
            "name",
            "email",
            "phone",
            "captured_at",
        ]

    def get_object(self, obj) -> str:
        return "lead"


MODEL_HELP = (
    "What answered: the language model's name as its server reported it (the bot's `model`, or the "
    "deployment's `LLM_MODEL`) with `LLM_PROVIDER=openai`; `extractive` with the offline default provider, "
    "which answers with quoted sentences of the bot's knowledge (or its fallback message) and no language model."
)


class ChatCompletionSerializer(serializers.Serializer):
    """The answer to POST /v1/chat/completions (native shape), also `message.completed`'s data."""

    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    bot_id = serializers.CharField(source="bot.public_id")
    conversation_id = serializers.CharField(source="conversation.public_id")
    role = serializers.CharField()
    content = serializers.CharField()
    model = serializers.CharField(help_text=MODEL_HELP)
    usage = serializers.SerializerMethodField()
    sources = SourceSerializer(
        many=True,
        help_text="The passages the answer is based on, best first: the quoted one (extractive), or those the "
        "model cites, in citation order, `[k]` in `content` being the k-th (openai). Empty for the fallback.",
    )
    conversation_status = serializers.CharField(
        source="conversation.status",
        help_text="The conversation's status after this answer: `bot`, or `handoff` when the bot has just handed "
        "it to a person (further messages get no bot answer until it is resumed).",
    )
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "chat.completion"

    @extend_schema_field(UsageSerializer)
    def get_usage(self, obj):
        return usage_of(obj)


def chat_completion_data(message: Message) -> dict:
    """`ChatCompletionSerializer(message).data`, faster: the answer and `message.completed`'s data."""
    return {
        "id": message.public_id,
        "object": "chat.completion",
        "bot_id": message.bot.public_id,
        "conversation_id": message.conversation.public_id,
        "role": message.role,
        "content": message.content,
        "model": message.model,
        "usage": usage_of(message),
        "sources": message.sources,
        "conversation_status": message.conversation.status,
        "created_at": iso_datetime(message.created_at),
    }


class ChatHandoffSerializer(serializers.Serializer):
    """The answer (202) to a message sent in a conversation that is with a person: stored, not answered by the bot."""

    object = serializers.CharField(help_text="`chat.handoff`")
    bot_id = serializers.CharField()
    conversation_id = serializers.CharField()
    conversation_status = serializers.CharField(help_text="`handoff`")
    user_message_id = serializers.CharField(help_text="The customer's message, stored and shown to the agents.")
    created_at = serializers.DateTimeField()


def chat_handoff_data(message: Message) -> dict:
    return {
        "object": "chat.handoff",
        "bot_id": message.bot.public_id,
        "conversation_id": message.conversation.public_id,
        "conversation_status": message.conversation.status,
        "user_message_id": message.public_id,
        "created_at": iso_datetime(message.created_at),
    }


class MessageStartSerializer(serializers.Serializer):
    """`message.start`: sent before the first token."""

    id = serializers.CharField(help_text="The assistant message's id.")
    object = serializers.CharField(default="message.start")
    bot_id = serializers.CharField()
    conversation_id = serializers.CharField()
    user_message_id = serializers.CharField()
    model = serializers.CharField(help_text=MODEL_HELP)
    sources = SourceSerializer(
        many=True,
        help_text="The passages given to the model, best first; `message.completed` lists the ones the answer cites.",
    )


class OpenAIMessageOutSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class OpenAIChoiceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    message = OpenAIMessageOutSerializer()
    finish_reason = serializers.CharField()


class OpenAIChatCompletionSerializer(serializers.Serializer):
    """The answer in OpenAI's Chat Completions shape (when the request used it)."""

    id = serializers.CharField()
    object = serializers.CharField(default="chat.completion")
    created = serializers.IntegerField()
    model = serializers.CharField(help_text=MODEL_HELP)
    choices = OpenAIChoiceSerializer(many=True)
    usage = UsageSerializer()
    conversation_id = serializers.CharField()
    sources = SourceSerializer(many=True)


def openai_completion(message: Message) -> dict:
    """A stored assistant message in OpenAI's `chat.completion` shape (`model`: what answered, as in the
    native shape — the language model's name, or "extractive" for the offline provider)."""
    return {
        "id": message.public_id,
        "object": "chat.completion",
        "created": int(message.created_at.timestamp()),
        "model": message.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": message.content}, "finish_reason": "stop"}
        ],
        "usage": usage_of(message),
        "conversation_id": message.conversation.public_id,
        "sources": message.sources,
    }


class ModelObjectSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="A bot id: pass it as `model`.")
    object = serializers.CharField(default="model")
    created = serializers.IntegerField()
    owned_by = serializers.CharField()
    name = serializers.CharField(help_text="The bot's name.")


class ModelListSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = ModelObjectSerializer(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class MessageListSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = MessageSerializer(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


# --- input ---------------------------------------------------------------------------


# A message holds some text: at least one character that is not white space.
NOT_BLANK = NOT_BLANK_PATTERN


def message_schema(description: str) -> dict:
    return {
        "type": "string",
        "pattern": NOT_BLANK,
        "minLength": 1,
        "maxLength": settings.CHAT_MAX_MESSAGE_CHARS,
        "description": description,
    }


@extend_schema_field(message_schema("The customer's message."))
class MessageTextField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)


class ChatRequestSerializer(serializers.Serializer):
    """POST /v1/chat/completions in BotHero's own shape."""

    bot_id = StrictCharField(max_length=64)
    message = MessageTextField()
    conversation_id = StrictCharField(
        max_length=64, required=False, allow_null=True, help_text="Continue this conversation; omit to start one."
    )
    stream = StrictBooleanField(required=False, default=False)
    metadata = ChatMetadataField(
        required=False,
        default=dict,
        help_text="Your own key/values for the conversation. `user_id` or `end_user_id` identifies the customer.",
    )
    handoff = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The customer asks for a person (a button in your UI): the conversation is handed off and the "
        "bot answers with its handoff notice.",
    )

    def validate_message(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The message is empty.")
        return check_message_length(value, "message")

    def validate_metadata(self, value: dict) -> dict:
        return validate_metadata(value)

    def chat_arguments(self) -> dict:
        """The validated request as `conversations.services.chat_reply_start`'s arguments."""
        data = self.validated_data
        return {
            "bot_id": data["bot_id"],
            "user_message": data["message"],
            "conversation_id": data.get("conversation_id"),
            "metadata": data["metadata"],
            "handoff": data["handoff"],
        }


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {
                "type": "array",
                "items": {"type": "object", "properties": {"type": {"type": "string"}, "text": {"type": "string"}}},
            },
        ],
        "nullable": True,
    }
)
class OpenAIContentField(serializers.Field):
    """A message's content: a string or a list of parts, of which the text parts are kept."""

    def to_internal_value(self, data):
        if data is None:
            return ""
        if isinstance(data, str):
            return data
        if isinstance(data, list):
            texts = []
            for part in data:
                if not isinstance(part, dict):
                    raise serializers.ValidationError("Content parts must be objects.")
                if part.get("type") == "text":
                    if not isinstance(part.get("text"), str):
                        raise serializers.ValidationError("A text part needs a string `text`.")
                    texts.append(part["text"])
            return "".join(texts)
        raise serializers.ValidationError("Content must be a string or a list of parts.")

    def to_representation(self, value):
        return value


class OpenAIMessageInSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "developer", "user", "assistant", "tool"])
    content = OpenAIContentField(required=False, allow_null=True)
    name = StrictCharField(required=False, max_length=64)


class OpenAIStreamOptionsSerializer(serializers.Serializer):
    include_usage = StrictBooleanField(required=False, default=False)


class OpenAIChatRequestSerializer(serializers.Serializer):
    """POST /v1/chat/completions in OpenAI's Chat Completions shape: `model` is a bot id."""

    model = StrictCharField(max_length=64, help_text="A bot id (see GET /v1/models).")
    messages = OpenAIMessageInSerializer(
        many=True,
        allow_empty=False,
        min_length=1,
        max_length=200,
        help_text="The conversation so far; the last message is the customer's (`role: user`, with some text, "
        f"at most {settings.CHAT_MAX_MESSAGE_CHARS} characters).",
    )
    stream = StrictBooleanField(required=False, default=False)
    stream_options = OpenAIStreamOptionsSerializer(required=False, allow_null=True)
    temperature = StrictFloatField(required=False, allow_null=True, min_value=0.0, max_value=2.0)
    max_tokens = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=32768)
    max_completion_tokens = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=32768)
    user = StrictCharField(required=False, max_length=200, help_text="Your id for the customer.")
    metadata = ChatMetadataField(required=False, default=dict)
    conversation_id = StrictCharField(
        max_length=64, required=False, allow_null=True, help_text="BotHero extension: continue this conversation."
    )
    handoff = serializers.BooleanField(
        required=False, default=False, help_text="BotHero extension: the customer asks for a person."
    )

    def validate_metadata(self, value: dict) -> dict:
        return validate_metadata(value)

    def validate_messages(self, value: list[dict]) -> list[dict]:
        if not any(message["role"] == "user" for message in value):
            raise serializers.ValidationError("At least one message must have the role `user`.")
        if value[-1]["role"] != "user":
            raise serializers.ValidationError("The last message must have the role `user`.")
        if not (value[-1].get("content") or "").strip():
            raise serializers.ValidationError("The last user message is empty.")
        check_message_length(value[-1]["content"], "messages")
        return value

    def chat_arguments(self) -> dict:
        """The validated request as `conversations.services.chat_reply_start`'s arguments.

        As with OpenAI the client sends the history: the last message is the
        customer's, earlier `user`/`assistant` messages are the prompt's history,
        and `system`/`developer` messages are added after the bot's instructions.
        """
        data = self.validated_data
        *earlier, last = data["messages"]
        return {
            "bot_id": data["model"],
            "bot_param": "model",
            "user_message": last["content"],
            "conversation_id": data.get("conversation_id"),
            "metadata": data["metadata"],
            "end_user_id": data.get("user", ""),
            "client_history": [
                {"role": m["role"], "content": m["content"]}
                for m in earlier
                if m["role"] in ("user", "assistant") and m.get("content")
            ],
            # A system message may come without content (OpenAI allows it): nothing to add then.
            "extra_instructions": tuple(
                m["content"] for m in earlier if m["role"] in ("system", "developer") and m.get("content")
            ),
            "temperature": data.get("temperature"),
            "max_tokens": data.get("max_completion_tokens") or data.get("max_tokens"),
            "handoff": data["handoff"],
        }


# 7 to 15 digits (ASCII), with an optional leading + and spaces, dots, dashes and brackets between.
PHONE_PATTERN = r"^\+?[ ().-]*(?:[0-9][ ().-]*){7,15}$"


@extend_schema_field({"type": "string", "maxLength": 40, "pattern": PHONE_PATTERN})
class PhoneField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)


class LeadInputSerializer(StrictSerializer):
    """Contact details from the widget's lead form (at least an email or a phone number)."""

    # In the OpenAPI document: `anyOf` a non-empty email, a non-empty phone.
    openapi_any_of_required = (("email",), ("phone",))

    name = StrictCharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = PhoneField(max_length=40, required=False, allow_blank=True, help_text="7 to 15 digits.")

    def validate_phone(self, value: str) -> str:
        if value and not re.fullmatch(PHONE_PATTERN, value):
            raise serializers.ValidationError("A phone number has 7 to 15 digits.", code="invalid_phone")
        return value.strip()

    def validate(self, attrs):
        if not (attrs.get("email") or attrs.get("phone")):
            raise serializers.ValidationError({"email": "Give an email address or a phone number."}, code="required")
        return attrs


class FeedbackInputSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=Message.Feedback.choices, allow_null=True)
    comment = StrictCharField(required=False, allow_blank=True, max_length=2000)


class ConversationFilterSerializer(serializers.Serializer):
    bot_id = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    # `true` or `false` only: `has_lead=null` (or `yes`, `1`) is a 400, not "no filter".
    has_lead = StrictQueryBooleanField(required=False, default=None)


class MessageOrderSerializer(serializers.Serializer):
    order = serializers.ChoiceField(choices=["asc", "desc"], required=False, default="asc")


class AgentMessageInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=[Message.Role.AGENT], help_text="`agent`: a person of your team.")
    content = serializers.CharField(trim_whitespace=False, max_length=20000)

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The message is empty.")
        return value
