from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response

from bothero.api.views import TenantViewSet
from bots import selectors, services
from bots.models import Bot
from bots.serializers import BotDeletedSerializer, BotInputSerializer, BotPublicSerializer, BotSerializer


class BotViewSet(mixins.ListModelMixin, TenantViewSet):
    """Bots: their instructions, model settings, retrieval and lead capture. Newest first."""

    serializer_class = BotSerializer
    queryset = Bot.objects.none()
    not_found_code = "bot_not_found"
    not_found_message = "No such bot."
    # The chat widget reads its bot's public settings with a publishable key.
    publishable_key_actions = {"public"}

    def safely_get_queryset(self, tenant):
        return selectors.bot_list(tenant=tenant, publishable_key=self.publishable_key)

    @extend_schema(operation_id="bots_list", summary="List bots")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="bots_create", request=BotInputSerializer, responses={201: BotSerializer}, summary="Create a bot"
    )
    def create(self, request):
        data = BotInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bot = services.bot_create(tenant=self.tenant, **data.validated_data)
        return Response(BotSerializer(bot).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="bots_retrieve", summary="Get a bot")
    def retrieve(self, request, id):
        return Response(BotSerializer(self.get_object()).data)

    @extend_schema(operation_id="bots_update", request=BotInputSerializer(partial=True), summary="Update a bot")
    def partial_update(self, request, id):
        bot = self.get_object()
        data = BotInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        # Nested settings merge, so PATCH {"retrieval": {"top_k": 3}} keeps min_score.
        for nested in ("retrieval", "lead_capture", "widget", "handoff"):
            if nested in fields:
                fields[nested] = {**getattr(bot, nested), **fields[nested]}
        bot = services.bot_update(bot=bot, **fields)
        return Response(BotSerializer(bot).data)

    @extend_schema(
        operation_id="bots_public_retrieve",
        responses=BotPublicSerializer,
        summary="Get a bot's public settings (what the chat widget shows)",
        description="Name, welcome message, lead capture and widget settings; callable with a publishable key "
        "for one of its bots.",
    )
    def public(self, request, id):
        return Response(BotPublicSerializer(self.get_object()).data)

    @extend_schema(operation_id="bots_delete", responses={200: BotDeletedSerializer}, summary="Delete a bot")
    def destroy(self, request, id):
        bot = self.get_object()
        public_id = bot.public_id
        services.bot_delete(bot=bot)
        return Response({"id": public_id, "object": "bot", "deleted": True})
