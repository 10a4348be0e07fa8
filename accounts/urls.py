from django.urls import path

from accounts import views

api_keys = views.ApiKeyViewSet.as_view({"get": "list", "post": "create"})
api_key_detail = views.ApiKeyViewSet.as_view({"get": "retrieve", "delete": "destroy"})

urlpatterns = [
    path("auth/token", views.TokenView.as_view()),
    path("auth/refresh", views.RefreshView.as_view()),
    path("auth/revoke", views.RevokeView.as_view()),
    path("auth/keys", api_keys),
    path("auth/keys/<str:id>", api_key_detail),
]
