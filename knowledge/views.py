from django.conf import settings
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from bothero.api.views import TenantAPIView, TenantViewSet
from bothero.errors import ApplicationError, ValidationError
from knowledge import answer_selectors, selectors, services, source_selectors
from knowledge.models import CuratedAnswer, Document, WebsiteSource
from knowledge.serializers import (
    CuratedAnswerCreateSerializer,
    CuratedAnswerDeletedSerializer,
    CuratedAnswerListQuerySerializer,
    CuratedAnswerSerializer,
    CuratedAnswerUpdateSerializer,
    DocumentDeletedSerializer,
    DocumentListQuerySerializer,
    DocumentSerializer,
    DocumentUploadSerializer,
    FileUploadSerializer,
    SearchInputSerializer,
    SearchResultSerializer,
    TextUploadSerializer,
    UrlUploadSerializer,
    WebsiteSourceCreateSerializer,
    WebsiteSourceDeletedSerializer,
    WebsiteSourceListQuerySerializer,
    WebsiteSourceSerializer,
)

# The error envelope; the schema hook (bothero.api.schema) replaces this component with the canonical one.
ErrorSerializer = inline_serializer(name="Error", fields={"error": serializers.DictField()})


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


class KnowledgeUploadView(TenantAPIView):
    parser_classes = [MultiPartParser, JSONParser]

    @extend_schema(
        operation_id="knowledge_upload",
        summary="Add a document to a bot's knowledge",
        description=(
            "Send a file as multipart form data (`file`, `bot_id`, optional `title` and `metadata`), or JSON "
            '`{"bot_id", "url"}` to fetch a web page or file, or JSON `{"bot_id", "title", "text"}`. '
            "Answers 202 with the document, `status: queued`; poll `GET /v1/knowledge/documents/{id}` or listen "
            "for the `document.ready` / `document.failed` webhooks. The same content (or the same URL) already "
            "added to the bot is not added twice: the answer is then 200 with the existing document and "
            "`duplicate: true`."
        ),
        request={
            "multipart/form-data": FileUploadSerializer,
            "application/json": PolymorphicProxySerializer(
                component_name="KnowledgeUploadJson",
                serializers=[UrlUploadSerializer, TextUploadSerializer],
                resource_type_field_name=None,
            ),
        },
        responses={
            202: DocumentUploadSerializer,
            200: OpenApiResponse(DocumentUploadSerializer, description="Duplicate: the bot's existing document."),
            413: _error("The file is larger than the upload limit (`file_too_large` / `request_too_large`)."),
            415: _error("Not a supported document type, judged by content (`unsupported_file_type`)."),
        },
    )
    def post(self, request):
        if request.content_type.startswith("multipart/"):
            document = self._create_from_file(request)
        elif "url" in request.data:
            data = UrlUploadSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            bot = self.tenant_bot(data.validated_data["bot_id"])
            document = services.document_create_from_url(
                tenant=self.tenant,
                bot=bot,
                url=data.validated_data["url"],
                title=data.validated_data.get("title"),
                metadata=data.validated_data.get("metadata"),
            )
        elif "text" in request.data:
            data = TextUploadSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            bot = self.tenant_bot(data.validated_data["bot_id"])
            document = services.document_create_from_text(
                tenant=self.tenant,
                bot=bot,
                title=data.validated_data["title"],
                text=data.validated_data["text"],
                metadata=data.validated_data.get("metadata"),
            )
        else:
            raise ValidationError(
                "Send a file (multipart form data), or JSON with a url or a text.", code="missing_param", param="file"
            )
        return Response(
            DocumentUploadSerializer(document).data,
            status=status.HTTP_200_OK if document.duplicate else status.HTTP_202_ACCEPTED,
        )

    def _create_from_file(self, request):
        data = FileUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > settings.MAX_UPLOAD_BYTES:
            raise ApplicationError(
                f"The file is {upload.size:,} bytes; the limit is {settings.MAX_UPLOAD_BYTES:,} bytes.",
                code="file_too_large",
                param="file",
                status_code=413,
            )
        bot = self.tenant_bot(data.validated_data["bot_id"])
        return services.document_create_from_file(
            tenant=self.tenant,
            bot=bot,
            data=upload.read(),
            filename=upload.name,
            title=data.validated_data.get("title"),
            metadata=data.validated_data.get("metadata"),
        )


class DocumentViewSet(mixins.ListModelMixin, TenantViewSet):
    serializer_class = DocumentSerializer
    queryset = Document.objects.none()
    not_found_code = "document_not_found"
    not_found_message = "No such document."

    def safely_get_queryset(self, tenant):
        return selectors.document_list(tenant=tenant)

    @extend_schema(
        operation_id="knowledge_documents_list",
        summary="List documents",
        parameters=[
            OpenApiParameter("bot_id", str, description="Only this bot's documents."),
            OpenApiParameter("status", str, enum=Document.Status.values, description="Only documents in this status."),
        ],
    )
    def list(self, request, *args, **kwargs):
        return self.list_by_bot(DocumentListQuerySerializer, selectors.document_list)

    @extend_schema(operation_id="knowledge_documents_retrieve", summary="Get a document and its ingestion status")
    def retrieve(self, request, id):
        return Response(DocumentSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="knowledge_documents_delete",
        summary="Delete a document",
        description="Deletes the document, its chunks and its stored file. Answers `{id, object, deleted: true}`, "
        "as every DELETE of an object does.",
        responses={200: DocumentDeletedSerializer},
    )
    def destroy(self, request, id):
        document = self.get_object()
        public_id = document.public_id
        services.document_delete(document=document)
        return Response({"id": public_id, "object": "document", "deleted": True})

    @extend_schema(
        operation_id="knowledge_documents_reindex",
        summary="Reindex a document",
        description=(
            "Queues the document for ingestion again (URL documents are downloaded again), for example after "
            "the embedding model changed. Its passages leave search until it is `ready` again."
        ),
        request=None,
        responses={202: DocumentSerializer},
    )
    def reindex(self, request, id):
        document = services.document_reindex(document=self.get_object())
        return Response(DocumentSerializer(document).data, status=status.HTTP_202_ACCEPTED)


class KnowledgeSearchView(TenantAPIView):
    @extend_schema(
        operation_id="knowledge_search",
        summary="Search a bot's knowledge (hit testing)",
        description=(
            "The retrieval the chat engine uses: full-text and vector search over the bot's ready documents. "
            "`score` is a calibrated relevance (0..1, the estimated probability that the passage answers the "
            "query); passages are listed by it, best first, and those under the bot's `retrieval.min_score` "
            "(or the request's `min_score`) are left out."
        ),
        request=SearchInputSerializer,
        responses={200: SearchResultSerializer},
    )
    def post(self, request):
        data = SearchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bot = self.tenant_bot(data.validated_data["bot_id"])
        passages = selectors.search(
            tenant=self.tenant,
            bot=bot,
            query=data.validated_data["query"],
            top_k=data.validated_data.get("top_k"),
            min_score=data.validated_data.get("min_score"),
        )
        body = {"object": "knowledge.search_result", "bot_id": bot.public_id, "query": data.validated_data["query"]}
        return Response(SearchResultSerializer({**body, "data": passages}).data)


class DocumentDeleteViewSet(DocumentViewSet):
    """`DELETE /v1/knowledge/:id`, the seed's path for deleting a document."""

    @extend_schema(
        operation_id="knowledge_delete",
        summary="Delete a document",
        description="Deletes the document, its chunks and its stored file. Same as `DELETE /v1/knowledge/documents/{id}`.",
        responses={200: DocumentDeletedSerializer},
    )
    def destroy(self, request, id):
        return super().destroy(request, id)


CURATED_EXAMPLE = {
    "id": "ans_4kd9Q2mZ",
    "object": "curated_answer",
    "bot_id": "bot_abc123",
    "question": "Do you ship to Canada?",
    "variants": ["Can you deliver to Canada?", "shipping to canada"],
    "answer": "Yes: Canada Post delivers in 5 to 8 business days for $12.",
    "from_message_id": None,
    "times_used": 14,
    "last_used_at": "2026-11-30T09:12:44Z",
    "created_at": "2026-11-02T16:01:09Z",
    "updated_at": "2026-11-02T16:01:09Z",
}


class CuratedAnswerViewSet(mixins.ListModelMixin, TenantViewSet):
    """Curated answers: a question (and its variants) and the answer to give word for word. A customer's
    question that matches one closely enough gets that answer, cited as the curated answer (both providers);
    otherwise retrieval answers as usual."""

    serializer_class = CuratedAnswerSerializer
    queryset = CuratedAnswer.objects.none()
    not_found_code = "curated_answer_not_found"
    not_found_message = "No such curated answer."

    def safely_get_queryset(self, tenant):
        return answer_selectors.curated_answer_list(tenant=tenant)

    @extend_schema(
        operation_id="curated_answers_list",
        summary="List curated answers",
        parameters=[OpenApiParameter("bot_id", str, description="Only this bot's.")],
    )
    def list(self, request, *args, **kwargs):
        return self.list_by_bot(CuratedAnswerListQuerySerializer, answer_selectors.curated_answer_list)

    @extend_schema(
        operation_id="curated_answers_create",
        summary="Create a curated answer (or make one from a message)",
        request=CuratedAnswerCreateSerializer,
        responses={201: CuratedAnswerSerializer},
        examples=[
            OpenApiExample(
                "A question and its answer",
                request_only=True,
                value={
                    "bot_id": "bot_abc123",
                    "question": "Do you ship to Canada?",
                    "variants": ["Can you deliver to Canada?"],
                    "answer": "Yes: Canada Post delivers in 5 to 8 business days for $12.",
                },
            ),
            OpenApiExample(
                "From an unanswered question",
                request_only=True,
                value={"from_message_id": "msg_q1w2e3", "answer": "Yes, we ship to Canada."},
            ),
            OpenApiExample("A created answer", response_only=True, value=CURATED_EXAMPLE),
        ],
    )
    def create(self, request):
        data = CuratedAnswerCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        if params.get("from_message_id"):
            curated = services.curated_answer_from_message(
                tenant=self.tenant,
                message_id=params["from_message_id"],
                answer=params.get("answer"),
                question=params.get("question"),
                variants=params["variants"],
            )
        else:
            curated = services.curated_answer_create(
                tenant=self.tenant,
                bot=self.tenant_bot(params["bot_id"]),
                question=params["question"],
                variants=params["variants"],
                answer=params["answer"],
            )
        return Response(CuratedAnswerSerializer(curated).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="curated_answers_retrieve", summary="Get a curated answer")
    def retrieve(self, request, id):
        return Response(CuratedAnswerSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="curated_answers_update",
        summary="Change a curated answer's question, variants or answer",
        request=CuratedAnswerUpdateSerializer,
        responses={200: CuratedAnswerSerializer},
    )
    def partial_update(self, request, id):
        curated = self.get_object()
        data = CuratedAnswerUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        curated = services.curated_answer_update(curated=curated, **data.validated_data)
        return Response(CuratedAnswerSerializer(curated).data)

    @extend_schema(
        operation_id="curated_answers_delete",
        summary="Delete a curated answer",
        responses={200: CuratedAnswerDeletedSerializer},
    )
    def destroy(self, request, id):
        services.curated_answer_delete(curated=self.get_object())
        return Response({"id": id, "object": "curated_answer", "deleted": True})


SOURCE_EXAMPLE = {
    "id": "src_8Hq2LmZ0",
    "object": "website_source",
    "bot_id": "bot_abc123",
    "type": "sitemap",
    "url": "https://www.acme-widgets.example/sitemap.xml",
    "max_pages": 500,
    "max_depth": 3,
    "include": ["/help/*"],
    "exclude": ["/help/archive/*"],
    "refresh": "daily",
    "status": "idle",
    "progress": {"phase": "done", "discovered": 212, "processed": 212},
    "last_result": {
        "discovered": 212,
        "created": 3,
        "updated": 2,
        "unchanged": 205,
        "removed": 1,
        "failed": 1,
        "skipped": 0,
        "errors": [
            {"url": "https://www.acme-widgets.example/help/video", "code": "document_too_large", "message": "..."}
        ],
    },
    "page_count": 210,
    "last_synced_at": "2026-11-30T03:12:09Z",
    "next_sync_at": "2026-12-01T03:12:09Z",
    "created_at": "2026-11-02T16:01:09Z",
}


class WebsiteSourceViewSet(mixins.ListModelMixin, TenantViewSet):
    """Website sources: a sitemap or a same-host crawl, one document per page, re-synced on demand and on
    schedule (only new and changed pages are ingested again; pages that are gone are removed)."""

    serializer_class = WebsiteSourceSerializer
    queryset = WebsiteSource.objects.none()
    not_found_code = "source_not_found"
    not_found_message = "No such website source."

    def safely_get_queryset(self, tenant):
        return source_selectors.website_source_list(tenant=tenant)

    @extend_schema(
        operation_id="website_sources_list",
        summary="List website sources",
        parameters=[OpenApiParameter("bot_id", str, description="Only this bot's.")],
    )
    def list(self, request, *args, **kwargs):
        return self.list_by_bot(WebsiteSourceListQuerySerializer, source_selectors.website_source_list)

    @extend_schema(
        operation_id="website_sources_create",
        summary="Add a website (sitemap or crawl); its first sync is queued",
        request=WebsiteSourceCreateSerializer,
        responses={202: WebsiteSourceSerializer},
        examples=[
            OpenApiExample(
                "A sitemap, refreshed daily",
                request_only=True,
                value={
                    "bot_id": "bot_abc123",
                    "type": "sitemap",
                    "url": "https://www.acme-widgets.example/sitemap.xml",
                    "max_pages": 500,
                    "include": ["/help/*"],
                    "exclude": ["/help/archive/*"],
                    "refresh": "daily",
                },
            ),
            OpenApiExample(
                "A crawl",
                request_only=True,
                value={"bot_id": "bot_abc123", "type": "crawl", "url": "https://docs.acme.example/", "max_depth": 2},
            ),
            OpenApiExample("A synced source", response_only=True, value=SOURCE_EXAMPLE),
        ],
    )
    def create(self, request):
        data = WebsiteSourceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        bot = self.tenant_bot(params.pop("bot_id"))
        source = services.website_source_create(tenant=self.tenant, bot=bot, **params)
        return Response(WebsiteSourceSerializer(source).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="website_sources_retrieve", summary="Get a website source, its progress and last result"
    )
    def retrieve(self, request, id):
        return Response(WebsiteSourceSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="website_sources_sync",
        summary="Sync a website source now",
        request=None,
        responses={202: WebsiteSourceSerializer},
    )
    def sync(self, request, id):
        source = services.website_source_sync_request(source=self.get_object())
        return Response(WebsiteSourceSerializer(source).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="website_sources_delete",
        summary="Delete a website source and every document it made",
        responses={200: WebsiteSourceDeletedSerializer},
    )
    def destroy(self, request, id):
        source = self.get_object()
        documents = source.pages.exclude(document=None).count()
        services.website_source_delete(source=source)
        return Response({"id": id, "object": "website_source", "deleted": True, "documents_deleted": documents})
