"""Websocket routes. Apps add theirs here (the realtime chat lives in conversations)."""

websocket_urlpatterns: list = []
