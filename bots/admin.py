"""Staff admin for bots. Edits and deletes go through `bots.services`, so they emit their events."""

from django import forms
from django.contrib import admin

from bots import services
from bots.models import EDITABLE_FIELDS, Bot
from bots.serializers import HandoffSerializer, LeadCaptureSerializer, RetrievalSerializer, WidgetSerializer


def _validated(serializer_class, value):
    serializer = serializer_class(data=value)
    if not serializer.is_valid():
        raise forms.ValidationError(f"{serializer.errors}")
    return dict(serializer.validated_data)


class BotForm(forms.ModelForm):
    """The JSON settings are checked with the API's own serializers, so staff cannot save a shape the API rejects."""

    class Meta:
        model = Bot
        fields = EDITABLE_FIELDS

    def clean_retrieval(self):
        return _validated(RetrievalSerializer, self.cleaned_data["retrieval"])

    def clean_lead_capture(self):
        return _validated(LeadCaptureSerializer, self.cleaned_data["lead_capture"])

    def clean_widget(self):
        return _validated(WidgetSerializer, self.cleaned_data["widget"])

    def clean_handoff(self):
        return _validated(HandoffSerializer, self.cleaned_data["handoff"])


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    form = BotForm
    list_display = ("name", "public_id", "tenant", "model", "status", "created_at", "updated_at")
    list_filter = ("status", "model")
    search_fields = ("name", "public_id", "tenant__name", "tenant__public_id")
    list_select_related = ("tenant",)
    readonly_fields = ("public_id", "tenant", "created_at", "updated_at")
    fields = ("public_id", "tenant", *EDITABLE_FIELDS, "created_at", "updated_at")

    def has_add_permission(self, request):
        # Tenants create bots through the API, within their plan's limit.
        return False

    def save_model(self, request, obj, form, change):
        original = Bot.objects.select_related("tenant").get(pk=obj.pk)
        changes = {name: getattr(obj, name) for name in form.changed_data if name in EDITABLE_FIELDS}
        services.bot_update(bot=original, **changes)

    def delete_model(self, request, obj):
        services.bot_delete(bot=obj)

    def delete_queryset(self, request, queryset):
        for bot in queryset.select_related("tenant"):
            services.bot_delete(bot=bot)
