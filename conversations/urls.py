from django.urls import path

from conversations import export_views, views

conversations = views.ConversationViewSet.as_view({"get": "list"})
conversation_detail = views.ConversationViewSet.as_view({"get": "retrieve", "delete": "destroy"})
conversation_messages = views.ConversationViewSet.as_view({"get": "messages", "post": "agent_message"})
conversation_handoff = views.ConversationViewSet.as_view({"post": "handoff"})
conversation_resume = views.ConversationViewSet.as_view({"post": "resume"})
conversation_close = views.ConversationViewSet.as_view({"post": "close"})
conversation_events = views.ConversationViewSet.as_view({"get": "events"})
message_feedback = views.ConversationViewSet.as_view({"post": "feedback"})
conversation_leads = views.ConversationViewSet.as_view({"post": "leads"})

urlpatterns = [
    path("chat/completions", views.ChatCompletionsView.as_view()),
    path("models", views.ModelListView.as_view()),
    path("models/<str:id>", views.ModelDetailView.as_view()),
    path("conversations", conversations),
    # Before conversations/<id>: "export" is not a conversation id.
    path("conversations/export", export_views.ConversationExportView.as_view()),
    path("conversations/<str:id>", conversation_detail),
    path("conversations/<str:id>/messages", conversation_messages),
    path("conversations/<str:id>/handoff", conversation_handoff),
    path("conversations/<str:id>/resume", conversation_resume),
    path("conversations/<str:id>/close", conversation_close),
    path("conversations/<str:id>/events", conversation_events),
    path("conversations/<str:id>/messages/<str:message_id>/feedback", message_feedback),
    path("conversations/<str:id>/leads", conversation_leads),
]
