from django.contrib import admin, messages

from knowledge import services
from knowledge.models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "title",
        "bot",
        "tenant",
        "status",
        "progress",
        "chunk_count",
        "error_code",
        "created_at",
    )
    list_filter = ("status", "source_type", "content_type")
    search_fields = ("public_id", "title", "filename", "source_url", "bot__public_id", "tenant__name")
    list_select_related = ("bot", "tenant")
    readonly_fields = [field.name for field in Document._meta.concrete_fields]
    actions = ["reindex"]

    def has_add_permission(self, request):
        return False

    # Deleting goes through the service, which also updates the bot's full-text statistics and removes the file.
    def delete_model(self, request, obj):
        services.document_delete(document=obj)

    def delete_queryset(self, request, queryset):
        for document in queryset:
            services.document_delete(document=document)

    @admin.action(description="Reindex the selected documents")
    def reindex(self, request, queryset):
        count = 0
        for document in queryset:
            services.document_reindex(document=document)
            count += 1
        self.message_user(request, f"Queued {count} document(s) for reindexing.", messages.SUCCESS)
