"""Staff admin for tenants, plans, members, users and API keys.

Changes with side effects go through `accounts.services`: suspending a tenant
ends its token sessions, creating an API key stores only its hash (the key is
shown once, on the page that answers the form, and kept nowhere else), and
revoking a key also ends the tokens exchanged for it.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts import services
from accounts.models import ApiKey, Membership, Plan, Tenant, UsageCounter
from accounts.origins import InvalidOrigin, allowed_origin_normalise

User = get_user_model()


def _this_month(field: str):
    """Subquery: the tenant's counter `field` for the current month (0 when nothing was counted)."""
    counters = UsageCounter.objects.filter(tenant=OuterRef("pk"), period_start=services.current_period_start())
    return Coalesce(Subquery(counters.values(field)[:1], output_field=IntegerField()), 0)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "price",
        "api_access",
        "max_bots",
        "max_documents",
        "max_storage_mb",
        "max_messages_per_month",
        "requests_per_minute",
        "tenant_count",
    )
    list_editable = ("api_access", "requests_per_minute")
    prepopulated_fields = {"slug": ("name",)}
    ordering = ("sort_order",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(tenant_count=Count("tenants"))

    @admin.display(description="price / month")
    def price(self, plan):
        return f"${plan.monthly_price_cents / 100:,.2f}"

    @admin.display(description="tenants", ordering="tenant_count")
    def tenant_count(self, plan):
        return plan.tenant_count


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


class ApiKeyInline(admin.TabularInline):
    """Read-only: keys are created and revoked on the API key pages, where the key can be shown once."""

    model = ApiKey
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "name",
        "public_id",
        "key_type",
        "display_prefix",
        "require_signature",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), empty_label=None)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "public_id",
        "plan",
        "status",
        "messages_this_month",
        "api_requests_this_month",
        "tokens_this_month",
        "created_at",
    )
    list_filter = ("plan", "status")
    search_fields = ("name", "public_id", "memberships__user__email")
    list_select_related = ("plan",)
    inlines = (MembershipInline, ApiKeyInline)
    actions = ("change_plan", "suspend", "reactivate")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                usage_messages=_this_month("messages"),
                usage_api_requests=_this_month("api_requests"),
                usage_prompt_tokens=_this_month("prompt_tokens"),
                usage_completion_tokens=_this_month("completion_tokens"),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        fields = ["public_id", "usage_this_month", "created_at", "updated_at"]
        if obj is not None:
            # Changed with the actions, which go through the services (suspension ends sessions).
            fields += ["plan", "status"]
        return fields

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "plan"]
        return ["name", "public_id", "plan", "status", "usage_this_month", "created_at", "updated_at"]

    @admin.display(description="messages (month)", ordering="usage_messages")
    def messages_this_month(self, tenant):
        return tenant.usage_messages

    @admin.display(description="API requests (month)", ordering="usage_api_requests")
    def api_requests_this_month(self, tenant):
        return tenant.usage_api_requests

    @admin.display(description="tokens (month)")
    def tokens_this_month(self, tenant):
        return tenant.usage_prompt_tokens + tenant.usage_completion_tokens

    @admin.display(description="usage this month")
    def usage_this_month(self, tenant):
        if tenant.pk is None:
            return "-"
        plan = tenant.plan
        limit = plan.max_messages_per_month
        return (
            f"{tenant.usage_messages} messages (limit {limit if limit is not None else 'none'}), "
            f"{tenant.usage_api_requests} API requests, "
            f"{tenant.usage_prompt_tokens} prompt + {tenant.usage_completion_tokens} completion tokens"
        )

    @admin.action(description="Change plan of selected tenants…")
    def change_plan(self, request, queryset):
        if "apply" in request.POST:
            form = ChangePlanForm(request.POST)
            if form.is_valid():
                plan = form.cleaned_data["plan"]
                for tenant in queryset:
                    services.tenant_change_plan(tenant=tenant, plan=plan)
                self.message_user(request, f"Moved {queryset.count()} tenant(s) to {plan.name}.", messages.SUCCESS)
                return None
        else:
            form = ChangePlanForm()
        return TemplateResponse(
            request,
            "admin/accounts/tenant/change_plan.html",
            {
                **self.admin_site.each_context(request),
                "title": "Change plan",
                "opts": self.model._meta,
                "tenants": queryset,
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Suspend selected tenants (API answers 403 tenant_suspended)")
    def suspend(self, request, queryset):
        for tenant in queryset:
            services.tenant_set_status(tenant=tenant, status=Tenant.Status.SUSPENDED)
        self.message_user(request, f"Suspended {queryset.count()} tenant(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected tenants")
    def reactivate(self, request, queryset):
        for tenant in queryset:
            services.tenant_set_status(tenant=tenant, status=Tenant.Status.ACTIVE)
        self.message_user(request, f"Reactivated {queryset.count()} tenant(s).", messages.SUCCESS)


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ApiKeyForm(forms.ModelForm):
    """The add form: publishable keys get their origins checked like the API's, one per line."""

    allowed_origins = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Publishable keys: one origin per line, such as https://www.acme.example or https://*.acme.example.",
    )

    class Meta:
        model = ApiKey
        fields = (
            "tenant",
            "name",
            "key_type",
            "require_signature",
            "expires_at",
            "bots",
            "allowed_origins",
            "identity_verification",
            "visitor_requests_per_minute",
            "address_requests_per_minute",
            "max_message_chars",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left out, they take the model's defaults (a secret key, no identity verification).
        for name in ("key_type", "identity_verification"):
            if name in self.fields:
                self.fields[name].required = False

    def clean_key_type(self):
        return self.cleaned_data.get("key_type") or ApiKey.Type.SECRET

    def clean_identity_verification(self):
        return self.cleaned_data.get("identity_verification") or ApiKey.IdentityVerification.OFF

    def clean_allowed_origins(self):
        value = self.cleaned_data.get("allowed_origins") or ""
        if isinstance(value, list):
            return value
        try:
            return [allowed_origin_normalise(line) for line in value.splitlines() if line.strip()]
        except InvalidOrigin as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        """The service's rules, as form errors: a publishable key needs the tenant's bots and origins."""
        data = super().clean()
        if self.instance.pk is not None or data.get("key_type") != ApiKey.Type.PUBLISHABLE:
            return data
        tenant = data.get("tenant")
        if not data.get("bots"):
            self.add_error("bots", "A publishable key needs the bots it may chat with.")
        elif tenant is not None and any(bot.tenant_id != tenant.pk for bot in data["bots"]):
            self.add_error("bots", "Every bot must belong to the key's tenant.")
        if not data.get("allowed_origins"):
            self.add_error("allowed_origins", "A publishable key needs the websites it may be used from.")
        if data.get("require_signature"):
            self.add_error("require_signature", "Browsers cannot sign requests: not for a publishable key.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = (
        "name",
        "public_id",
        "tenant",
        "key_type",
        "display_prefix",
        "require_signature",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = (ApiKeyStatusFilter, "key_type", "require_signature")
    search_fields = ("name", "public_id", "display_prefix", "tenant__name", "tenant__public_id")
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant", "bots")
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        publishable = [
            "bots",
            "allowed_origins",
            "identity_verification",
            "visitor_requests_per_minute",
            "address_requests_per_minute",
            "max_message_chars",
        ]
        if obj is None:
            return ["tenant", "name", "key_type", "require_signature", "expires_at", *publishable]
        fields = [
            "name",
            "public_id",
            "tenant",
            "key_type",
            "display_prefix",
            "require_signature",
            "created_by",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        ]
        return fields + publishable if obj.is_publishable else fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [field for field in self.get_fields(request, obj) if field != "name"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        created = services.api_key_create(
            tenant=obj.tenant,
            name=obj.name,
            key_type=obj.key_type,
            require_signature=obj.require_signature,
            expires_at=obj.expires_at,
            created_by=request.user,
            **self._publishable_options(obj, form),
        )
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created.api_key, field.attname))
        # Kept on the request only, for response_add: never in the session, a message cookie or the database.
        request._created_api_key = created

    @staticmethod
    def _publishable_options(obj, form) -> dict:
        if not obj.is_publishable:
            return {}  # a secret key's form may hold publishable settings: they do not apply
        limits = {
            name: form.cleaned_data.get(name)
            for name in ("visitor_requests_per_minute", "address_requests_per_minute", "max_message_chars")
            if form.cleaned_data.get(name) is not None
        }
        return {
            "bot_ids": [bot.public_id for bot in form.cleaned_data.get("bots") or []],
            "allowed_origins": form.cleaned_data.get("allowed_origins") or [],
            "identity_verification": obj.identity_verification,
            "limits": limits,
        }

    def save_related(self, request, form, formsets, change):
        # The service set a new key's bots; an existing key's are read-only here.
        if not change:
            return
        super().save_related(request, form, formsets, change)

    def response_add(self, request, obj, post_url_continue=None):
        created = getattr(request, "_created_api_key", None)
        if created is None:
            return super().response_add(request, obj, post_url_continue)
        return TemplateResponse(
            request,
            "admin/accounts/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "title": "API key created",
                "opts": self.model._meta,
                "api_key": obj,
                "key": created.key,
                "signing_secret": created.signing_secret,
                "identity_secret": created.identity_secret,
                "changelist_url": reverse("admin:accounts_apikey_changelist"),
                "change_url": reverse("admin:accounts_apikey_change", args=[obj.pk]),
            },
            headers={"Cache-Control": "no-store"},
        )

    @admin.action(description="Revoke selected API keys (and the tokens exchanged for them)")
    def revoke(self, request, queryset):
        for api_key in queryset.select_related("tenant"):
            services.api_key_revoke(tenant=api_key.tenant, public_id=api_key.public_id)
        self.message_user(request, f"Revoked {queryset.count()} API key(s).", messages.SUCCESS)


@admin.register(UsageCounter)
class UsageCounterAdmin(admin.ModelAdmin):
    list_display = ("tenant", "period_start", "messages", "api_requests", "prompt_tokens", "completion_tokens")
    list_filter = ("period_start",)
    search_fields = ("tenant__name", "tenant__public_id")
    list_select_related = ("tenant",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UserMembershipInline(MembershipInline):
    autocomplete_fields = ("tenant",)


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = (UserMembershipInline,)
    list_display = ("username", "email", "tenants", "is_staff", "is_active", "last_login")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("memberships__tenant")

    @admin.display(description="tenants (role)")
    def tenants(self, user):
        return ", ".join(f"{m.tenant.name} ({m.role})" for m in user.memberships.all()) or "-"
