from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic.base import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from bothero import health
from bothero.api.errors import route_not_found
from bothero.api.schema import CompactOpenApiJsonRenderer
from widget import views as widget_views

urlpatterns = [
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("admin/", admin.site.urls),
    path(
        "v1/openapi.json",
        SpectacularJSONAPIView.as_view(
            renderer_classes=[CompactOpenApiJsonRenderer],
            authentication_classes=[],
            permission_classes=[],
            throttle_classes=[],
        ),
        name="openapi-schema",
    ),
    path(
        "docs",
        SpectacularSwaggerView.as_view(
            url_name="openapi-schema", authentication_classes=[], permission_classes=[], throttle_classes=[]
        ),
        name="docs",
    ),
    # The address people type; APPEND_SLASH is off, so it would otherwise be a 404.
    path("docs/", RedirectView.as_view(pattern_name="docs", permanent=True)),
    path("widget.js", widget_views.widget_script, name="widget-js"),
    path("chat/<str:bot_id>", widget_views.chat_page, name="hosted-chat"),
    path("v1/", include("accounts.urls")),
    path("v1/", include("bots.urls")),
    path("v1/", include("conversations.urls")),
    path("v1/", include("knowledge.urls")),
    path("v1/", include("analytics.urls")),
    path("v1/", include("webhooks.urls")),
    # Last: any other path is a 404 in the error envelope, with DEBUG on or off.
    re_path(r"^", route_not_found),
]

handler400 = "bothero.api.errors.handler400"
handler403 = "bothero.api.errors.handler403"
handler404 = "bothero.api.errors.handler404"
handler500 = "bothero.api.errors.handler500"
