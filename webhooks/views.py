from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response

from bothero.api.pagination import list_body
from bothero.api.views import MANAGER_PERMISSIONS, TenantAPIView, TenantViewSet
from bothero.errors import ValidationError
from webhooks import selectors, services
from webhooks.event_types import EVENT_TYPES
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.serializers import (
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointDeletedSerializer,
    WebhookEndpointInputSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookEndpointWithSecretSerializer,
    WebhookEventTypeListSerializer,
)

WEBHOOK_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The webhook endpoint's id (`wh_...`).")
DELIVERY_ID = OpenApiParameter("delivery_id", str, OpenApiParameter.PATH, description="The delivery's id (`dlv_...`).")


class WebhookEndpointViewSet(mixins.ListModelMixin, TenantViewSet):
    permission_classes = MANAGER_PERMISSIONS
    serializer_class = WebhookEndpointSerializer
    queryset = WebhookEndpoint.objects.none()
    not_found_code = "webhook_not_found"
    not_found_message = "No such webhook."

    def safely_get_queryset(self, tenant):
        return selectors.webhook_endpoint_list(tenant=tenant)

    @property
    def idempotency_keeps_success_body(self) -> bool:
        # Creation and rotation answer the signing secret, shown once: never stored for replay.
        return self.action not in ("create", "rotate_secret")

    @extend_schema(operation_id="webhooks_list", summary="List webhook endpoints")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="webhooks_create",
        request=WebhookEndpointInputSerializer,
        responses={201: WebhookEndpointWithSecretSerializer},
        summary="Create a webhook endpoint",
        description="Returns the signing secret (`whsec_...`); it is shown only here and on rotation.",
    )
    def create(self, request):
        data = WebhookEndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(tenant=self.tenant, **data.validated_data)
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="webhooks_retrieve", parameters=[WEBHOOK_ID], summary="Get a webhook endpoint")
    def retrieve(self, request, id):
        return Response(WebhookEndpointSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="webhooks_update",
        parameters=[WEBHOOK_ID],
        request=WebhookEndpointUpdateSerializer,
        responses={200: WebhookEndpointSerializer},
        summary="Update a webhook endpoint",
        description='`{"enabled": true}` re-enables a disabled endpoint and resumes its waiting deliveries.',
    )
    def partial_update(self, request, id):
        endpoint = self.get_object()
        data = WebhookEndpointUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhooks_delete",
        parameters=[WEBHOOK_ID],
        responses={200: WebhookEndpointDeletedSerializer},
        summary="Delete a webhook endpoint",
    )
    def destroy(self, request, id):
        endpoint = self.get_object()
        public_id = endpoint.public_id
        services.webhook_endpoint_delete(endpoint=endpoint)
        return Response({"id": public_id, "object": "webhook_endpoint", "deleted": True})

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        parameters=[WEBHOOK_ID],
        request=None,
        responses={200: WebhookEndpointWithSecretSerializer},
        summary="Rotate a webhook endpoint's signing secret",
        description="The previous secret keeps signing beside the new one for 24 hours "
        "(two `v1,` signatures in `webhook-signature`).",
    )
    def rotate_secret(self, request, id):
        endpoint = services.webhook_endpoint_rotate_secret(endpoint=self.get_object())
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhooks_test",
        parameters=[WEBHOOK_ID],
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Send a test event",
        description="Queues a `webhook.test` event for this endpoint only; follow it in its deliveries.",
    )
    def test(self, request, id):
        delivery = services.webhook_test_send(endpoint=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryViewSet(mixins.ListModelMixin, TenantViewSet):
    """The delivery log of one of the tenant's endpoints."""

    permission_classes = MANAGER_PERMISSIONS

    serializer_class = WebhookDeliverySerializer
    queryset = Delivery.objects.none()
    lookup_url_kwarg = "delivery_id"
    not_found_code = "delivery_not_found"
    not_found_message = "No such delivery."

    def safely_get_queryset(self, tenant):
        endpoint = selectors.webhook_endpoint_get(tenant=tenant, public_id=self.kwargs["id"])
        return selectors.webhook_delivery_list(endpoint=endpoint, status=self.request.query_params.get("status"))

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        parameters=[
            WEBHOOK_ID,
            OpenApiParameter("status", str, enum=Delivery.Status.values, description="Only deliveries in this status."),
        ],
        summary="List a webhook endpoint's deliveries",
    )
    def list(self, request, *args, **kwargs):
        wanted = request.query_params.get("status")
        if wanted and wanted not in Delivery.Status.values:
            raise ValidationError(
                f"status must be one of {', '.join(Delivery.Status.values)}.", code="invalid_status", param="status"
            )
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="webhooks_deliveries_retrieve",
        parameters=[WEBHOOK_ID, DELIVERY_ID],
        responses={200: WebhookDeliveryDetailSerializer},
        summary="Get a delivery with its attempts",
    )
    def retrieve(self, request, id, delivery_id):
        return Response(WebhookDeliveryDetailSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="webhooks_deliveries_retry",
        parameters=[WEBHOOK_ID, DELIVERY_ID],
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Retry a delivery now",
        description="Sends the same event (same `webhook-id`) again, whatever the delivery's status; "
        "409 `delivery_in_progress` while an attempt is in flight, 409 `webhook_disabled` for a disabled endpoint.",
    )
    def retry(self, request, id, delivery_id):
        delivery = services.webhook_delivery_retry(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EventTypesView(TenantAPIView):
    @extend_schema(
        operation_id="webhooks_event_types",
        responses={200: WebhookEventTypeListSerializer},
        summary="List the event types a webhook can subscribe to",
    )
    def get(self, request):
        data = [{"type": name, "description": description} for name, description in EVENT_TYPES.items()]
        return Response(list_body(data, has_more=False, next_cursor=None))
