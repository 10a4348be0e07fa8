from django.urls import path

from analytics import views

urlpatterns = [
    path("analytics/overview", views.OverviewView.as_view()),
    path("analytics/conversations", views.ConversationSeriesView.as_view()),
    path("analytics/leads", views.LeadListView.as_view()),
    path("analytics/unanswered", views.UnansweredView.as_view()),
    path("analytics/usage", views.UsageView.as_view()),
]
