import json

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bothero.api.serializers import (
    HttpUrlField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from knowledge.models import Document

MAX_METADATA_BYTES = 8 * 1024
MAX_QUERY_CHARS = 2000


def validate_metadata(value):
    if not isinstance(value, dict):
        raise serializers.ValidationError("metadata must be a JSON object.", code="metadata")
    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(
            f"metadata must be at most {MAX_METADATA_BYTES} bytes of JSON.", code="metadata"
        )
    return value


@extend_schema_field({"type": "object", "additionalProperties": True, "example": {"source": "handbook"}})
class MetadataField(serializers.JSONField):
    """A JSON object; in multipart form data, a string holding one."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError("metadata must be a JSON object.", code="metadata") from None
        return validate_metadata(super().to_internal_value(data))


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="PDF, DOCX, HTML, Markdown, CSV or plain text; the type is judged by content."
    )
    bot_id = StrictCharField(max_length=64)
    title = StrictCharField(max_length=255, required=False, help_text="Defaults to the file name.")
    metadata = MetadataField(required=False, help_text="A JSON object (in form data: a string holding one).")


class UrlUploadSerializer(serializers.Serializer):
    bot_id = StrictCharField(max_length=64)
    url = HttpUrlField(help_text="An http(s) URL of a public web page or file.")
    title = StrictCharField(max_length=255, required=False, help_text="Defaults to the URL.")
    metadata = MetadataField(required=False)


class TextUploadSerializer(serializers.Serializer):
    bot_id = StrictCharField(max_length=64)
    title = StrictCharField(max_length=255)
    text = StrictCharField(trim_whitespace=False)
    metadata = MetadataField(required=False)


class DocumentErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class DocumentSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    bot_id = serializers.CharField(source="bot.public_id")
    source_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    content_type = serializers.SerializerMethodField()
    content_sha256 = serializers.SerializerMethodField()
    filename = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id",
            "object",
            "bot_id",
            "title",
            "source_type",
            "source_url",
            "filename",
            "content_type",
            "size_bytes",
            "content_sha256",
            "status",
            "progress",
            "chunk_count",
            "error",
            "metadata",
            "embedding_model",
            "embedding_dimension",
            "created_at",
            "updated_at",
            "ready_at",
        ]

    def get_object(self, obj) -> str:
        return "document"

    def get_source_url(self, obj) -> str | None:
        return obj.source_url or None

    def get_filename(self, obj) -> str | None:
        return obj.filename or None

    def get_content_type(self, obj) -> str | None:
        return obj.content_type or None

    def get_content_sha256(self, obj) -> str | None:
        return obj.content_sha256 or None

    @extend_schema_field(DocumentErrorSerializer(allow_null=True))
    def get_error(self, obj):
        if not obj.error_code:
            return None
        return {"code": obj.error_code, "message": obj.error_message}


class DocumentUploadSerializer(DocumentSerializer):
    duplicate = serializers.SerializerMethodField(
        help_text="True when this content (or URL) was already in the bot: the existing document is returned (HTTP 200)."
    )

    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "duplicate"]

    def get_duplicate(self, obj) -> bool:
        return bool(getattr(obj, "duplicate", False))


class DocumentDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="document")
    deleted = serializers.BooleanField(default=True)


class DocumentListQuerySerializer(serializers.Serializer):
    bot_id = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(choices=Document.Status.choices, required=False)


class SearchInputSerializer(serializers.Serializer):
    bot_id = StrictCharField(max_length=64)
    query = StrictCharField(max_length=MAX_QUERY_CHARS)
    top_k = StrictIntegerField(min_value=1, max_value=50, required=False, help_text="Defaults to the bot's.")
    min_score = StrictFloatField(
        min_value=0.0, max_value=1.0, required=False, help_text="Defaults to the bot's retrieval.min_score."
    )


class PassageSerializer(serializers.Serializer):
    object = serializers.SerializerMethodField()
    chunk_id = serializers.CharField()
    document_id = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField(
        help_text="Calibrated relevance, 0..1: the estimated probability that the passage answers the query."
    )
    snippet = serializers.CharField()
    text = serializers.CharField()
    position = serializers.IntegerField()
    heading = serializers.CharField(allow_null=True)
    page = serializers.IntegerField(allow_null=True)

    def get_object(self, obj) -> str:
        return "knowledge.passage"


class SearchResultSerializer(serializers.Serializer):
    object = serializers.CharField(default="knowledge.search_result")
    bot_id = serializers.CharField()
    query = serializers.CharField()
    data = PassageSerializer(many=True, help_text="Passages ranked best first, by `score`.")


# --- curated answers ---------------------------------------------------------------------------


class CuratedAnswerSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    bot_id = serializers.CharField(source="bot.public_id")
    question = serializers.CharField()
    variants = serializers.ListField(child=serializers.CharField(), help_text="Other wordings of the question.")
    answer = serializers.CharField(help_text="Given word for word to a matching question.")
    from_message_id = serializers.CharField(
        source="source_message.public_id", allow_null=True, default=None, help_text="The message it was made from."
    )
    times_used = serializers.IntegerField(help_text="Customer questions answered with it.")
    last_used_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "curated_answer"


def _variants_field(**kwargs):
    return serializers.ListField(
        child=StrictCharField(max_length=500), max_length=20, help_text="Up to 20 other wordings.", **kwargs
    )


class CuratedAnswerCreateSerializer(StrictSerializer):
    """Either `bot_id` + `question` + `answer`, or `from_message_id` (with `answer` unless the message is an
    assistant's answer to keep as it is)."""

    openapi_any_of_required = (("from_message_id",), ("bot_id", "question", "answer"))

    bot_id = StrictCharField(max_length=64, required=False)
    question = StrictCharField(max_length=500, required=False)
    variants = _variants_field(required=False, default=list)
    answer = StrictCharField(max_length=4000, required=False)
    from_message_id = StrictCharField(
        max_length=64,
        required=False,
        help_text="A customer's question (an unanswered one) or an assistant's answer (e.g. a rated one): its "
        "question becomes the curated question, and a kept answer the curated answer when `answer` is left out.",
    )

    def validate(self, attrs):
        if attrs.get("from_message_id"):
            return attrs
        for name in ("bot_id", "question", "answer"):
            if not attrs.get(name):
                raise serializers.ValidationError({name: "This field is required (or give from_message_id)."})
        return attrs


class CuratedAnswerUpdateSerializer(StrictSerializer):
    question = StrictCharField(max_length=500, required=False)
    variants = _variants_field(required=False)
    answer = StrictCharField(max_length=4000, required=False)


class CuratedAnswerListQuerySerializer(serializers.Serializer):
    bot_id = serializers.CharField(max_length=64, required=False)


class CuratedAnswerDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="curated_answer")
    deleted = serializers.BooleanField(default=True)


# --- website sources ---------------------------------------------------------------------------


class WebsiteSourceSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    bot_id = serializers.CharField(source="bot.public_id")
    type = serializers.CharField(help_text="`sitemap` or `crawl`.")
    url = serializers.CharField()
    max_pages = serializers.IntegerField()
    max_depth = serializers.IntegerField(help_text="Crawls: how many links away from `url` to go.")
    include = serializers.ListField(child=serializers.CharField())
    exclude = serializers.ListField(child=serializers.CharField())
    refresh = serializers.CharField(help_text="`daily`, `weekly` or `never`.")
    status = serializers.CharField(help_text="`queued`, `syncing`, `idle` (synced) or `failed` (nothing discovered).")
    progress = serializers.DictField(help_text="While syncing: `phase`, `discovered`, `processed`.")
    last_result = serializers.DictField(
        allow_null=True,
        help_text="The last sync: `discovered`, `created`, `updated`, `unchanged`, `removed`, `failed`, `skipped`, "
        "`errors` (up to 20 `{url, code, message}`), and `error` when it failed as a whole.",
    )
    page_count = serializers.SerializerMethodField()
    last_synced_at = serializers.DateTimeField(allow_null=True)
    next_sync_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "website_source"

    def get_page_count(self, obj) -> int:
        return obj.pages.exclude(document=None).count()


def _patterns_field():
    return serializers.ListField(
        child=StrictCharField(max_length=300),
        max_length=50,
        required=False,
        default=list,
        help_text="Glob patterns on the URL path (with its query), e.g. `/docs/*`.",
    )


class WebsiteSourceCreateSerializer(StrictSerializer):
    bot_id = StrictCharField(max_length=64)
    type = serializers.ChoiceField(choices=["sitemap", "crawl"])
    url = HttpUrlField(help_text="The sitemap (or sitemap index), or the page to crawl from.")
    max_pages = StrictIntegerField(
        min_value=1, max_value=settings.KNOWLEDGE_SOURCE_MAX_PAGES, required=False, default=100
    )
    max_depth = StrictIntegerField(min_value=0, max_value=10, required=False, default=3)
    include = _patterns_field()
    exclude = _patterns_field()
    refresh = serializers.ChoiceField(choices=["daily", "weekly", "never"], required=False, default="weekly")


class WebsiteSourceListQuerySerializer(serializers.Serializer):
    bot_id = serializers.CharField(max_length=64, required=False)


class WebsiteSourceDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="website_source")
    deleted = serializers.BooleanField(default=True)
    documents_deleted = serializers.IntegerField()
