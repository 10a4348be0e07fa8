"""GET /v1/conversations/export: the list's filters → a streamed JSON-lines or CSV file of every message."""

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation

from bothero.api.views import TenantAPIView
from bothero.errors import ValidationError
from conversations import exports, selectors
from conversations.serializers import ConversationFilterSerializer

JSONL_EXAMPLE = (
    '{"id":"msg_k8m2n4","object":"message","conversation_id":"conv_xyz789","bot_id":"bot_abc123",'
    '"role":"assistant","content":"We\'re open Monday through Friday, 9 AM to 6 PM EST.",'
    '"sources":[{"document_id":"doc_faq1","title":"FAQ","chunk_id":"chk_1","score":0.83,"snippet":"We\'re open…"}],'
    '"usage":{"prompt_tokens":142,"completion_tokens":28,"total_tokens":170},"model":"gpt-oss-120b",'
    '"latency_ms":812,"status":"complete","is_fallback":false,"feedback":{"rating":"up","comment":""},'
    '"created_at":"2026-11-03T09:12:44.120Z","conversation":{"id":"conv_xyz789","end_user_id":"customer-7",'
    '"metadata":{"plan":"gold"},"created_at":"2026-11-03T09:12:40.003Z"}}\n'
)


class ExportQuerySerializer(ConversationFilterSerializer):
    format = serializers.CharField(required=False, default="jsonl")

    def validate_format(self, value: str) -> str:
        if value not in exports.FORMATS:
            raise ValidationError(
                f"format must be one of {', '.join(exports.FORMATS)}; got {value!r}.",
                code="invalid_format",
                param="format",
            )
        return value


class JSONErrorsNegotiation(BaseContentNegotiation):
    """The file is streamed by the view itself; errors are JSON whatever `format` or Accept say."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ConversationExportView(TenantAPIView):
    """Every message of the conversations matching the list's filters (`bot_id`, `created_after`,
    `created_before`, `has_lead`), conversations oldest first and each one's messages oldest first,
    streamed in constant memory. `format=jsonl` (default): one JSON object per line, the message as
    `GET /v1/conversations/:id/messages` shows it (sources, usage, feedback) plus a `conversation`
    summary. `format=csv`: one row per message (UTF-8 with a byte-order mark; formula-like cells start
    with a single quote)."""

    content_negotiation_class = JSONErrorsNegotiation

    @extend_schema(
        operation_id="conversations_export",
        summary="Export conversations' messages as JSON lines or CSV (streamed)",
        parameters=[
            OpenApiParameter("format", str, enum=list(exports.FORMATS), description="`jsonl` (default) or `csv`."),
            OpenApiParameter("bot_id", str, description="Only this bot's conversations."),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Created after (ISO 8601)."),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Created before (ISO 8601)."),
            OpenApiParameter("has_lead", bool, description="Only those with (true) or without (false) a lead."),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR,
                description="One message per line.",
                examples=[OpenApiExample("A line", value=JSONL_EXAMPLE)],
            ),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Columns: " + ", ".join(exports.CSV_COLUMNS) + ".",
                examples=[
                    OpenApiExample(
                        "The header and a row",
                        value="\ufeff"
                        + ",".join(exports.CSV_COLUMNS)
                        + "\r\nconv_xyz789,bot_abc123,customer-7,2026-11-03T09:12:40.003Z,msg_k8m2n4,assistant,"
                        "We're open 9 to 6.,2026-11-03T09:12:44.120Z,complete,false,gpt-oss-120b,142,28,812,up,,"
                        'doc_faq1,"[{""document_id"":""doc_faq1"",...}]"\r\n',
                    )
                ],
            ),
        },
    )
    def get(self, request):
        query = ExportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        filters = dict(query.validated_data)
        export_format = filters.pop("format")
        conversations = selectors.conversation_list(tenant=self.tenant, **filters)
        # Under ASGI an async iterator streams; a sync one would be read whole into memory first.
        if isinstance(request._request, ASGIRequest):
            content = exports.aiter_export(conversations, export_format)
        else:
            content = exports.iter_export(conversations, export_format)
        response = StreamingHttpResponse(content, content_type=exports.MEDIA_TYPES[export_format])
        filename = f"conversations-{timezone.now():%Y%m%dT%H%M%SZ}.{export_format}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["X-Accel-Buffering"] = "no"
        return response
