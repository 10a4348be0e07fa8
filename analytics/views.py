"""Analytics endpoints: parse the query → one selector → serialize."""

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from analytics import exports, selectors
from analytics.serializers import (
    LeadListSerializer,
    LeadQuerySerializer,
    LeadSerializer,
    OverviewSerializer,
    RangeQuerySerializer,
    SeriesQuerySerializer,
    SeriesSerializer,
    UnansweredListSerializer,
    UnansweredQuerySerializer,
    UnansweredQuestionSerializer,
    UsageQuerySerializer,
    UsageReportSerializer,
)
from analytics.usage import tenant_usage_get
from bothero.api.pagination import decode_cursor, encode_cursor, list_body, paginate_queryset
from bothero.api.views import TenantAPIView


class CSVRenderer(BaseRenderer):
    """Takes part in content negotiation for `text/csv`; the leads view streams the CSV itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        rows = data.get("data", []) if isinstance(data, dict) else []
        return exports.csv_header() + "".join(exports.csv_line(row.get(c) for c in exports.CSV_COLUMNS) for row in rows)


class CSVOrJSONNegotiation(BaseContentNegotiation):
    """CSV for `?format=csv` or an Accept header that prefers `text/csv`; JSON otherwise.

    An unknown `format` is reported by the view (400 `invalid_format`), after authentication.
    """

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        json_renderer, csv_renderer = renderers
        requested = request.query_params.get("format")
        if requested is not None:
            chosen = csv_renderer if requested == "csv" else json_renderer
            return chosen, chosen.media_type
        for part in request.META.get("HTTP_ACCEPT", "").split(","):
            media_type, *options = (piece.strip().lower() for piece in part.split(";"))
            if "q=0" in options:
                continue
            if media_type == "text/csv":
                return csv_renderer, csv_renderer.media_type
            if media_type in ("application/json", "application/*", "*/*"):
                break
        return json_renderer, json_renderer.media_type


class AnalyticsView(TenantAPIView):
    """Every analytics endpoint takes `bot_id`, `start`, `end` and `timezone` (see RangeQuerySerializer)."""

    def parse(self, serializer_class):
        """Validated query parameters and the bot they name (404 `bot_not_found` for another tenant's)."""
        # A plain dict: DRF reads an empty value in a QueryDict as "not sent" (then the default applies).
        query = serializer_class(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        bot = self.tenant_bot(params["bot_id"]) if params.get("bot_id") else None
        return params, bot


class OverviewView(AnalyticsView):
    """Conversations, messages, unique end users, leads, answer quality, feedback, tokens and latency
    for a period (default: the last 30 days including today), each with the same figure for the period
    of equal length just before it."""

    @extend_schema(
        operation_id="analytics_overview",
        summary="Overview of a period, with the previous period",
        parameters=[RangeQuerySerializer],
        responses={200: OverviewSerializer},
    )
    def get(self, request):
        params, bot = self.parse(RangeQuerySerializer)
        overview = selectors.analytics_overview(tenant=self.tenant, bot=bot, window=params["window"])
        return Response(OverviewSerializer(overview).data)


class ConversationSeriesView(AnalyticsView):
    """Conversations, messages, leads and fallbacks per local hour, day or ISO week (Monday) in
    `timezone`, zero-filled. Buckets follow the zone's DST changes (a local day may be 23 or 25 hours);
    hourly series cover at most 31 days."""

    @extend_schema(
        operation_id="analytics_conversations",
        summary="Zero-filled time series of conversations, messages, leads and fallbacks",
        parameters=[SeriesQuerySerializer],
        responses={200: SeriesSerializer},
    )
    def get(self, request):
        params, bot = self.parse(SeriesQuerySerializer)
        series = selectors.conversation_series(
            tenant=self.tenant, bot=bot, window=params["window"], granularity=params["granularity"]
        )
        return Response(SeriesSerializer(series).data)


class LeadListView(AnalyticsView):
    """Leads captured in the range, newest first. `format=csv` or `Accept: text/csv` streams every
    matching lead as CSV (UTF-8 with a byte-order mark; cells that a spreadsheet would run as a formula
    start with a single quote)."""

    renderer_classes = [JSONRenderer, CSVRenderer]
    content_negotiation_class = CSVOrJSONNegotiation

    @extend_schema(
        operation_id="analytics_leads",
        summary="Leads, as a paginated list or streamed CSV",
        parameters=[LeadQuerySerializer],
        responses={
            (200, "application/json"): LeadListSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request):
        params, bot = self.parse(LeadQuerySerializer)
        leads = selectors.lead_list(tenant=self.tenant, bot=bot, window=params["window"])
        if request.accepted_renderer.format == "csv":
            return self.csv_response(leads, params["window"])
        rows, has_more, next_cursor = paginate_queryset(leads, request)
        return Response(list_body(LeadSerializer(rows, many=True).data, has_more=has_more, next_cursor=next_cursor))

    def csv_response(self, leads, window):
        # Under ASGI an async iterator streams; a sync one would be read whole into memory first.
        is_asgi = isinstance(self.request._request, ASGIRequest)
        content = exports.aiter_leads_csv(leads) if is_asgi else exports.iter_leads_csv(leads)
        response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
        filename = f"leads-{window.start:%Y%m%d}-{window.end:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class UnansweredView(AnalyticsView):
    """The user questions that got the bot's fallback answer, grouped by normalised text (lower case,
    single spaces, no surrounding punctuation), most frequent first: what to add to the bot's knowledge."""

    @extend_schema(
        operation_id="analytics_unanswered",
        summary="Questions the bot answered with its fallback, most frequent first",
        parameters=[UnansweredQuerySerializer],
        responses={200: UnansweredListSerializer},
    )
    def get(self, request):
        params, bot = self.parse(UnansweredQuerySerializer)
        offset = decode_cursor(params["cursor"]) if "cursor" in params else 0
        questions, has_more = selectors.unanswered_questions(
            tenant=self.tenant, bot=bot, window=params["window"], limit=params["limit"], offset=offset
        )
        next_cursor = encode_cursor(offset + len(questions)) if has_more else None
        data = UnansweredQuestionSerializer(questions, many=True).data
        return Response(list_body(data, has_more=has_more, next_cursor=next_cursor))


USAGE_EXAMPLE = {
    "object": "analytics.usage",
    "month": "2026-11",
    "start": "2026-11-01T00:00:00Z",
    "end": "2026-12-01T00:00:00Z",
    "plan": {"id": "legend", "name": "Legend", "requests_per_minute": 600},
    "messages": {"used": 1234, "limit": 50000, "remaining": 48766},
    "api_requests": {"used": 5210, "limit": None, "remaining": None},
    "prompt_tokens": {"used": 182000, "limit": None, "remaining": None},
    "completion_tokens": {"used": 35400, "limit": None, "remaining": None},
    "conversations": {"used": 310, "limit": None, "remaining": None},
    "leads": {"used": 12, "limit": None, "remaining": None},
    "bots": {"used": 3, "limit": 20, "remaining": 17},
    "documents": {"used": 48, "limit": 1000, "remaining": 952},
    "storage_bytes": {"used": 7340032, "limit": 2097152000, "remaining": 2089811968},
    "daily": [
        {"date": "2026-11-01", "messages": 41, "api_requests": 180, "prompt_tokens": 6100, "completion_tokens": 1180},
        {"date": "2026-11-02", "messages": 0, "api_requests": 0, "prompt_tokens": 0, "completion_tokens": 0},
    ],
}


class UsageView(TenantAPIView):
    """This billing month's (or `month`'s) usage against the plan: messages (the monthly quota), API requests,
    prompt and completion tokens, conversations and leads of the month, and the bots, documents and storage
    held now; each with the plan's limit and what is left (null: unlimited), plus a zero-filled daily series
    (UTC days). The same figures as the staff admin's usage page."""

    @extend_schema(
        operation_id="analytics_usage",
        summary="Usage this month against the plan's limits, with a daily series",
        parameters=[UsageQuerySerializer],
        responses={200: UsageReportSerializer},
        examples=[OpenApiExample("This month", value=USAGE_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        query = UsageQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        usage = tenant_usage_get(tenant=self.tenant, month=query.validated_data.get("month"))
        return Response(UsageReportSerializer(usage).data)
