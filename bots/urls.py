from django.urls import path

from bots import views

bots = views.BotViewSet.as_view({"get": "list", "post": "create"})
bot_detail = views.BotViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
bot_public = views.BotViewSet.as_view({"get": "public"})

urlpatterns = [
    path("bots", bots),
    path("bots/<str:id>", bot_detail),
    path("bots/<str:id>/public", bot_public),
]
