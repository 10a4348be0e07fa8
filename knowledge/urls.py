from django.urls import path

from knowledge import views

documents = views.DocumentViewSet.as_view({"get": "list"})
document_detail = views.DocumentViewSet.as_view({"get": "retrieve", "delete": "destroy"})
document_reindex = views.DocumentViewSet.as_view({"post": "reindex"})
document_delete = views.DocumentDeleteViewSet.as_view({"delete": "destroy"})
sources = views.WebsiteSourceViewSet.as_view({"get": "list", "post": "create"})
source_detail = views.WebsiteSourceViewSet.as_view({"get": "retrieve", "delete": "destroy"})
source_sync = views.WebsiteSourceViewSet.as_view({"post": "sync"})
curated_answers = views.CuratedAnswerViewSet.as_view({"get": "list", "post": "create"})
curated_answer_detail = views.CuratedAnswerViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path("knowledge/upload", views.KnowledgeUploadView.as_view()),
    path("knowledge/search", views.KnowledgeSearchView.as_view()),
    path("knowledge/documents", documents),
    path("knowledge/documents/<str:id>", document_detail),
    path("knowledge/documents/<str:id>/reindex", document_reindex),
    path("knowledge/sources", sources),
    path("knowledge/sources/<str:id>", source_detail),
    path("knowledge/sources/<str:id>/sync", source_sync),
    path("knowledge/answers", curated_answers),
    path("knowledge/answers/<str:id>", curated_answer_detail),
    # The seed path for deleting a document.
    path("knowledge/<str:id>", document_delete),
]
