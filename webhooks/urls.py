from django.urls import path

from webhooks import views

endpoints = views.WebhookEndpointViewSet.as_view({"get": "list", "post": "create"})
endpoint_detail = views.WebhookEndpointViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)
rotate_secret = views.WebhookEndpointViewSet.as_view({"post": "rotate_secret"})
send_test = views.WebhookEndpointViewSet.as_view({"post": "test"})
deliveries = views.WebhookDeliveryViewSet.as_view({"get": "list"})
delivery_detail = views.WebhookDeliveryViewSet.as_view({"get": "retrieve"})
delivery_retry = views.WebhookDeliveryViewSet.as_view({"post": "retry"})

urlpatterns = [
    path("webhooks", endpoints),
    # Before webhooks/<id>, which would otherwise take "event-types" for an id.
    path("webhooks/event-types", views.EventTypesView.as_view()),
    path("webhooks/<str:id>", endpoint_detail),
    path("webhooks/<str:id>/rotate-secret", rotate_secret),
    path("webhooks/<str:id>/test", send_test),
    path("webhooks/<str:id>/deliveries", deliveries),
    path("webhooks/<str:id>/deliveries/<str:delivery_id>", delivery_detail),
    path("webhooks/<str:id>/deliveries/<str:delivery_id>/retry", delivery_retry),
]
