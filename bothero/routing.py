"""Websocket routes: the realtime chat lives in conversations."""

from django.urls import path

from conversations.consumers import RealtimeConsumer

websocket_urlpatterns: list = [
    path("v1/realtime", RealtimeConsumer.as_asgi()),
]
