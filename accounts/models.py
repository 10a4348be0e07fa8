"""Tenants, plans, members, API keys, access/refresh tokens and usage counters."""

import hashlib
import hmac

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from knox.models import AbstractAuthToken

from bothero.ids import PublicIdField


class Plan(models.Model):
    """A plan tier. Limits are data, edited by staff in the admin; null means unlimited."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=64)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    api_access = models.BooleanField(default=False, help_text="Whether tenants on this plan may use the REST API.")
    max_bots = models.PositiveIntegerField(null=True, blank=True)
    max_documents = models.PositiveIntegerField(null=True, blank=True)
    max_storage_mb = models.PositiveIntegerField(null=True, blank=True)
    max_messages_per_month = models.PositiveIntegerField(null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField(default=60)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order"]

    def __str__(self):
        return f"{self.name} (${self.monthly_price_cents / 100:.0f}/mo)"


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    public_id = PublicIdField(prefix="ten")
    name = models.CharField(max_length=200)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name} ({self.public_id})"


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="unique_membership")]


class ApiKey(models.Model):
    """An API key. Only its SHA-256 and a display prefix are stored; the key is shown once.

    A secret key (`bh_live_`) is for servers. A publishable key (`pk_live_`) is
    made to be shipped to browsers: it may only chat with its `bots` (and what
    the chat widget needs), from its `allowed_origins`, under per-visitor and
    per-address limits (`bothero.api.publishable`).
    """

    class Type(models.TextChoices):
        SECRET = "secret"
        PUBLISHABLE = "publishable"

    class IdentityVerification(models.TextChoices):
        OFF = "off"
        OPTIONAL = "optional"  # a user_id must come with its user_hash; anonymous visitors are welcome
        REQUIRED = "required"  # every visitor must be a verified user

    public_id = PublicIdField(prefix="key")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    key_type = models.CharField(max_length=16, choices=Type.choices, default=Type.SECRET)
    display_prefix = models.CharField(max_length=24)
    key_hash = models.CharField(max_length=64, unique=True)
    require_signature = models.BooleanField(default=False)
    # The signing secret is derived from SECRET_KEY and this salt (see signing_secret),
    # so a copy of the database alone does not reveal it.
    signing_salt = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Publishable keys only.
    bots = models.ManyToManyField("bots.Bot", blank=True, related_name="publishable_keys")
    allowed_origins = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    identity_verification = models.CharField(
        max_length=16, choices=IdentityVerification.choices, default=IdentityVerification.OFF
    )
    # Like signing_salt: the identity secret is derived from SECRET_KEY and this salt.
    identity_salt = models.CharField(max_length=64, blank=True)
    # Null: the deployment's default (WIDGET_* settings).
    visitor_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    address_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    max_message_chars = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-id"]),
            # "Does any live publishable key allow this origin?" (CORS preflights) is an array overlap.
            GinIndex(fields=["allowed_origins"], name="apikey_allowed_origins_gin"),
        ]

    def __str__(self):
        return f"{self.name} ({self.display_prefix}…)"

    @property
    def is_publishable(self) -> bool:
        return self.key_type == self.Type.PUBLISHABLE

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @property
    def signing_secret(self) -> str | None:
        if not self.require_signature:
            return None
        digest = hmac.new(
            settings.SECRET_KEY.encode(), f"bhsig:{self.signing_salt}".encode(), hashlib.sha256
        ).hexdigest()
        return f"bhsig_{digest}"

    @property
    def identity_secret(self) -> str | None:
        """The HMAC key a customer's server signs its users' ids with (`user_hash`), when verification is on."""
        if self.identity_verification == self.IdentityVerification.OFF or not self.identity_salt:
            return None
        digest = hmac.new(
            settings.SECRET_KEY.encode(), f"bhid:{self.identity_salt}".encode(), hashlib.sha256
        ).hexdigest()
        return f"bhid_{digest}"

    def limit(self, name: str) -> int:
        """This key's `visitor_requests_per_minute`, `address_requests_per_minute` or `max_message_chars`."""
        value = getattr(self, name)
        return value if value is not None else getattr(settings, f"WIDGET_{name.upper()}")


class TokenFamily(models.Model):
    """All access and refresh tokens descending from one exchange; revoked together on refresh reuse."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="token_families")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)


class AccessToken(AbstractAuthToken):
    """Short-lived bearer token (django-rest-knox), for a tenant rather than only a user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="access_tokens", on_delete=models.CASCADE
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="access_tokens")
    family = models.ForeignKey(TokenFamily, on_delete=models.CASCADE, related_name="access_tokens")


class RefreshToken(models.Model):
    family = models.ForeignKey(TokenFamily, on_delete=models.CASCADE, related_name="refresh_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class UsageCounter(models.Model):
    """Per-tenant usage for one calendar month (UTC)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="usage_counters")
    period_start = models.DateField()
    messages = models.PositiveIntegerField(default=0)
    api_requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "period_start"], name="unique_usage_period")]


class UsageDay(models.Model):
    """Per-tenant usage for one UTC day: the daily series behind the monthly `UsageCounter`.

    Written by the same statement as the month's counter (`usage_increment_ctes`),
    so the days of a month add up to its counter for every day since this table exists.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    messages = models.PositiveIntegerField(default=0)
    api_requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="unique_usage_day")]
