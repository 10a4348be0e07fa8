"""Chat completions (native and OpenAI shapes, plain and streamed), models, conversations, feedback."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import mixins, status
from rest_framework.response import Response

from accounts.services import publishable_key_not_allowed
from bothero.api.pagination import list_body, paginate_queryset
from bothero.api.publishable import visitor_stream_open
from bothero.api.views import TenantAPIView, TenantViewSet
from bothero.errors import ApplicationError
from bots.selectors import bot_list
from conversations import handoff, selectors, services, streaming
from conversations.models import Conversation
from conversations.serializers import (
    AgentMessageInputSerializer,
    ChatCompletionSerializer,
    ChatHandoffSerializer,
    ChatRequestSerializer,
    ConversationDeletedSerializer,
    ConversationFilterSerializer,
    ConversationSerializer,
    FeedbackInputSerializer,
    LeadInputSerializer,
    LeadSerializer,
    MessageListSerializer,
    MessageOrderSerializer,
    MessageSerializer,
    ModelListSerializer,
    ModelObjectSerializer,
    OpenAIChatCompletionSerializer,
    OpenAIChatRequestSerializer,
    chat_completion_data,
    chat_handoff_data,
    openai_completion,
)

STREAM_DESCRIPTION = """With `"stream": true` the answer is `text/event-stream`.

Native shape: `event: message.start` (message and conversation ids, model, sources; before any token),
`event: message.delta` (`{"delta": "..."}`), `event: message.completed` (the full chat.completion object)
or `event: error` (the error envelope), with `: heartbeat` comments while the model is silent.

OpenAI shape: `data: {chat.completion.chunk}` frames, a last chunk with `finish_reason`, a usage chunk when
`stream_options.include_usage`, then `data: [DONE]`; an error mid-stream is `data: {"error": {...}}`."""


# One server-sent event (what schemathesis checks each event of a stream against).
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {
            "type": "string",
            "enum": ["message.start", "message.delta", "message.completed", "chat.handoff", "error"],
            "description": "Native shape only; OpenAI's shape sends `data:` lines alone.",
        },
        "data": {"type": "string", "description": "JSON, or `[DONE]` at the end of an OpenAI-shaped stream."},
    },
}


def _model_object(bot) -> dict:
    return {
        "id": bot.public_id,
        "object": "model",
        "created": int(bot.created_at.timestamp()),
        "owned_by": bot.tenant.public_id,
        "name": bot.name,
    }


def _stream_response(make_stream, request, *, on_close=None) -> StreamingHttpResponse:
    # Under ASGI the async generator is served on the event loop as tokens arrive;
    # a synchronous server (the test client, WSGI) gets the same events buffered.
    if isinstance(request._request, ASGIRequest):
        content = make_stream()
    else:
        content = streaming.buffered(make_stream)
    response = StreamingHttpResponse(content, content_type="text/event-stream; charset=utf-8")
    if on_close is not None:
        # Django closes the response when the client goes, but not our generator when the disconnect came
        # while a frame was being sent (it is then left to the garbage collector): `on_close` runs either way.
        response._resource_closers.append(on_close)
    for name, value in streaming.SSE_HEADERS.items():
        response[name] = value
    return response


class StreamingNotSupportedError(ApplicationError):
    status_code = 501
    error_type = "api_error"
    default_code = "streaming_not_supported"


def _handoff_response(prepared, request, *, stream: bool, openai_shape: bool):
    """A message in a conversation with a person: stored, not answered. 202 with `chat.handoff`, or that object as
    the one event of a stream (`event: chat.handoff`; OpenAI shape: a `data:` frame, then `[DONE]`)."""
    data = chat_handoff_data(prepared.user_message)
    if not stream:
        return Response(data, status=202)

    async def frames():
        if openai_shape:
            yield b"data: " + streaming.json_bytes(data) + b"\n\ndata: [DONE]\n\n"
        else:
            yield b"event: chat.handoff\ndata: " + streaming.json_bytes(data) + b"\n\n"

    return _stream_response(frames, request)


class ChatCompletionsView(TenantAPIView):
    # The chat widget chats with a publishable key, in the native shape.
    publishable_key_actions = {"post"}

    def initial(self, request, *args, **kwargs):
        # latency_ms counts from here: the request has arrived, before auth and limits.
        self.started_at = time.perf_counter()
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="chat_completions_create",
        summary="Send a message to a bot and get its answer",
        description="Native shape `{bot_id, message, conversation_id?, stream?, metadata?}`, or OpenAI's Chat "
        "Completions shape `{model: <bot id>, messages, stream?}` answered in OpenAI's shape (so the "
        "official OpenAI SDKs work with `base_url=<host>/v1`).\n\n" + STREAM_DESCRIPTION,
        request=PolymorphicProxySerializer(
            component_name="ChatCompletionRequest",
            serializers=[ChatRequestSerializer, OpenAIChatRequestSerializer],
            resource_type_field_name=None,
        ),
        responses={
            (200, "application/json"): PolymorphicProxySerializer(
                component_name="ChatCompletionResponse",
                serializers=[ChatCompletionSerializer, OpenAIChatCompletionSerializer],
                resource_type_field_name=None,
            ),
            (200, "text/event-stream"): OpenApiResponse(SSE_EVENT_SCHEMA, description=STREAM_DESCRIPTION),
            (202, "application/json"): OpenApiResponse(
                ChatHandoffSerializer,
                description="The conversation is with a person (`handoff`): the message is stored and shown to "
                "the agents; the bot does not answer. Streamed, the same object is the one `chat.handoff` event.",
                examples=[
                    OpenApiExample(
                        "Handed off",
                        value={
                            "object": "chat.handoff",
                            "bot_id": "bot_abc123",
                            "conversation_id": "conv_xyz789",
                            "conversation_status": "handoff",
                            "user_message_id": "msg_q1w2e3",
                            "created_at": "2026-11-30T10:15:00.123Z",
                        },
                    )
                ],
            ),
            (409, "application/json"): OpenApiResponse(
                description="The bot is disabled (`bot_disabled`), or the conversation is closed "
                "(`conversation_closed`)."
            ),
            (429, "application/json"): OpenApiResponse(
                description="Rate limit, or the plan's monthly messages are used up (`monthly_quota_exceeded`, "
                "with `Retry-After` and `X-Quota-Reset`)."
            ),
            (502, "application/json"): OpenApiResponse(description="The language model failed (`upstream_error`)."),
            (504, "application/json"): OpenApiResponse(
                description="The language model did not answer in time (`upstream_timeout`)."
            ),
        },
        examples=[
            OpenApiExample(
                "Native",
                request_only=True,
                value={"bot_id": "bot_abc123", "message": "When are you open?", "stream": False},
            ),
            OpenApiExample(
                "OpenAI shape",
                request_only=True,
                value={"model": "bot_abc123", "messages": [{"role": "user", "content": "When are you open?"}]},
            ),
        ],
    )
    def post(self, request):
        if isinstance(request.data, dict) and "messages" in request.data and "message" not in request.data:
            return self._openai_shape(request)
        return self._native_shape(request)

    def _native_shape(self, request):
        data = ChatRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prepared = services.chat_reply_start(
            tenant=self.tenant,
            started_at=self.started_at,
            publishable_key=self.publishable_key,
            visitor=request.user.visitor,
            **data.chat_arguments(),
        )
        if prepared.silent:
            return _handoff_response(prepared, request, stream=data.validated_data["stream"], openai_shape=False)
        if data.validated_data["stream"]:
            request_id = request._request.request_id
            return _stream_response(lambda: streaming.native_sse(prepared, request_id=request_id), request)
        message = services.reply_generate(prepared)
        return Response(chat_completion_data(message))

    def _openai_shape(self, request):
        if self.publishable_key is not None:
            # Its clients send the whole history, which a visitor's browser could make up.
            raise publishable_key_not_allowed()
        data = OpenAIChatRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        prepared = services.chat_reply_start(tenant=self.tenant, started_at=self.started_at, **data.chat_arguments())
        if prepared.silent:
            return _handoff_response(prepared, request, stream=params["stream"], openai_shape=True)
        if params["stream"]:
            request_id = request._request.request_id
            include_usage = bool((params.get("stream_options") or {}).get("include_usage"))
            return _stream_response(
                lambda: streaming.openai_sse(prepared, include_usage=include_usage, request_id=request_id),
                request,
            )
        message = services.reply_generate(prepared)
        return Response(openai_completion(message))


class ModelListView(TenantAPIView):
    """The tenant's bots as OpenAI models, so `client.models.list()` shows what `model` can be."""

    @extend_schema(operation_id="models_list", summary="List the bots as models", responses=ModelListSerializer)
    def get(self, request):
        bots = bot_list(tenant=self.tenant).select_related("tenant").order_by("-id")
        return Response(list_body([_model_object(bot) for bot in bots], has_more=False, next_cursor=None))


class ModelDetailView(TenantAPIView):
    @extend_schema(operation_id="models_retrieve", summary="Get a bot as a model", responses=ModelObjectSerializer)
    def get(self, request, id):
        return Response(_model_object(self.tenant_bot(id, param="id")))


class ConversationViewSet(mixins.ListModelMixin, TenantViewSet):
    serializer_class = ConversationSerializer
    queryset = Conversation.objects.none()
    not_found_code = "conversation_not_found"
    not_found_message = "No such conversation."
    # The chat widget (a publishable key) reads its visitor's conversation, follows it live (while a person
    # answers), rates answers and leaves a lead.
    publishable_key_actions = {"messages", "events", "feedback", "leads"}

    def safely_get_queryset(self, tenant):
        if self.publishable_key is not None:
            return selectors.conversation_list_for_visitor(
                tenant=tenant, publishable_key=self.publishable_key, visitor=self.request.user.visitor
            )
        return selectors.conversation_list(tenant=tenant)

    @extend_schema(
        operation_id="conversations_list",
        summary="List conversations",
        parameters=[
            OpenApiParameter("bot_id", str, description="Only this bot's conversations."),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Created after (ISO 8601)."),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Created before (ISO 8601)."),
            OpenApiParameter("has_lead", bool, description="Only those with (true) or without (false) a lead."),
            OpenApiParameter(
                "status",
                str,
                enum=[choice.value for choice in Conversation.Status],
                description="Only those with the bot, with a person (`handoff`: the agents' queue) or closed.",
            ),
        ],
    )
    def list(self, request, *args, **kwargs):
        filters = ConversationFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        queryset = selectors.conversation_list(tenant=self.tenant, **filters.validated_data)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ConversationSerializer(page, many=True).data)

    @extend_schema(operation_id="conversations_retrieve", summary="Get a conversation")
    def retrieve(self, request, id):
        return Response(ConversationSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="conversations_delete",
        summary="Delete a conversation with its messages and leads",
        responses={200: ConversationDeletedSerializer},
    )
    def destroy(self, request, id):
        conversation = self.get_object()
        services.conversation_delete(conversation=conversation)
        return Response({"id": id, "object": "conversation", "deleted": True})

    @extend_schema(
        operation_id="conversations_messages_list",
        summary="List a conversation's messages",
        parameters=[
            OpenApiParameter("order", str, enum=["asc", "desc"], description="`asc` (default): oldest first."),
            OpenApiParameter("limit", int, description="Items per page, 1–100 (default 20)."),
            OpenApiParameter("cursor", str, description="The `next_cursor` of the previous page."),
        ],
        responses=MessageListSerializer,
    )
    def messages(self, request, id):
        conversation = self.get_object()
        order = MessageOrderSerializer(data=request.query_params.dict())
        order.is_valid(raise_exception=True)
        rows, has_more, next_cursor = paginate_queryset(
            selectors.message_list(conversation=conversation),
            request,
            ascending=order.validated_data["order"] == "asc",
        )
        return Response(list_body(MessageSerializer(rows, many=True).data, has_more=has_more, next_cursor=next_cursor))

    @extend_schema(
        operation_id="conversations_messages_feedback",
        summary="Rate an assistant message",
        request=FeedbackInputSerializer,
        responses=MessageSerializer,
    )
    def feedback(self, request, id, message_id):
        conversation = self.get_object()
        message = selectors.message_get(conversation=conversation, public_id=message_id)
        data = FeedbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.message_feedback_set(
            message=message, rating=data.validated_data["rating"], comment=data.validated_data.get("comment")
        )
        return Response(MessageSerializer(message).data)

    @extend_schema(
        operation_id="conversations_leads_create",
        summary="Leave contact details for a conversation (the widget's lead form)",
        request=LeadInputSerializer,
        responses={201: LeadSerializer},
    )
    def leads(self, request, id):
        conversation = self.get_object()
        data = LeadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lead = services.lead_submit(conversation=conversation, **data.validated_data)
        return Response(LeadSerializer(lead).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="conversations_messages_create",
        summary="Reply as a person (role `agent`)",
        description="An agent's message in the conversation, which is handed off first if the bot still had it. "
        "It appears in the history, on the conversation's live streams (`GET /v1/conversations/:id/events`, "
        "the `/v1/realtime` websocket) and as `message.created` in webhooks. A closed conversation is a 409 "
        "`conversation_closed`.",
        request=AgentMessageInputSerializer,
        responses={201: MessageSerializer},
        examples=[
            OpenApiExample("Agent reply", request_only=True, value={"role": "agent", "content": "Hi, Sam here."})
        ],
    )
    def agent_message(self, request, id):
        conversation = self.get_object()
        data = AgentMessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = handoff.agent_message_create(conversation=conversation, content=data.validated_data["content"])
        return Response(MessageSerializer(message).data, status=201)

    @extend_schema(
        operation_id="conversations_handoff",
        summary="Hand the conversation to a person",
        description="The bot stops answering: customer messages are stored and get a 202 `chat.handoff` until "
        "the conversation is resumed. Emits `conversation.handoff_requested` (reason `api`); a conversation "
        "already with a person is returned unchanged.",
        request=None,
        responses={200: ConversationSerializer},
    )
    def handoff(self, request, id):
        conversation = handoff.conversation_handoff(
            conversation=self.get_object(), reason=Conversation.HandoffReason.API
        )
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        operation_id="conversations_resume",
        summary="Give the conversation back to the bot",
        description="Emits `conversation.resumed`. 409 `conversation_not_in_handoff` when the bot has it already, "
        "`conversation_closed` when it is closed.",
        request=None,
        responses={200: ConversationSerializer},
    )
    def resume(self, request, id):
        conversation = handoff.conversation_resume(conversation=self.get_object())
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        operation_id="conversations_close",
        summary="Close the conversation",
        description="No more messages from the customer (409 `conversation_closed`) or agents. "
        "Emits `conversation.closed`.",
        request=None,
        responses={200: ConversationSerializer},
    )
    def close(self, request, id):
        conversation = handoff.conversation_close(conversation=self.get_object())
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        operation_id="conversations_events",
        summary="Follow the conversation live (server-sent events)",
        description="`text/event-stream` that stays open: `event: ready` first (`{conversation_id, status}`), then "
        "`message.created` (an agent's message; while handed off, customers' messages too), "
        "`conversation.handoff_requested`, `conversation.resumed` and `conversation.closed`, each with the object "
        "as `data`; heartbeat comments in between. Served by the ASGI server (uvicorn) only.\n\n"
        "With a publishable key (the chat widget), for the visitor's own conversation: the visitor's own messages "
        "are left out, the conversation events carry `{id, object, bot_id, status, status_changed_at}`, the "
        "stream ends after `WIDGET_EVENTS_MAX_SECONDS` (reconnect), and a visitor or an address holding too many "
        "streams open gets 429 `too_many_streams`.",
        responses={
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR),
            (429, "application/json"): OpenApiResponse(
                description="Rate limit, or (publishable key) too many streams open (`too_many_streams`)."
            ),
        },
    )
    def events(self, request, id):
        conversation = self.get_object()
        if not isinstance(request._request, ASGIRequest):
            raise StreamingNotSupportedError("Live streams need the ASGI server (uvicorn).")
        public_id = conversation.public_id
        heartbeat_seconds = settings.CHAT_HEARTBEAT_SECONDS
        if self.publishable_key is None:
            return _stream_response(
                lambda: streaming.conversation_sse(public_id, heartbeat_seconds=heartbeat_seconds), request
            )
        release = visitor_stream_open(request, self.publishable_key)
        return _stream_response(
            lambda: streaming.conversation_sse(
                public_id,
                heartbeat_seconds=heartbeat_seconds,
                max_seconds=settings.WIDGET_EVENTS_MAX_SECONDS,
                for_visitor=True,
                on_close=release,
            ),
            request,
            on_close=release,
        )
