from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ApiKey
from accounts.origins import InvalidOrigin, allowed_origin_normalise
from bothero.api.serializers import StrictBooleanField, StrictCharField, StrictIntegerField, StrictSerializer
from bothero.errors import ValidationError

GRANT_TYPES = ("api_key", "password")


class ApiKeyGrantSerializer(StrictSerializer):
    grant_type = serializers.ChoiceField(choices=["api_key"])
    api_key = StrictCharField(max_length=200)


class PasswordGrantSerializer(StrictSerializer):
    grant_type = serializers.ChoiceField(choices=["password"])
    # Not an EmailField: sign-in looks the address up, and one that is not there is a 401 like a wrong password.
    email = StrictCharField(max_length=254, help_text="The user's email address.")
    password = StrictCharField(max_length=200, style={"input_type": "password"})
    tenant_id = StrictCharField(
        required=False,
        max_length=40,
        help_text="The tenant to sign in to, for a member of several (default: the first).",
    )


GRANT_SERIALIZERS = {"api_key": ApiKeyGrantSerializer, "password": PasswordGrantSerializer}


class GrantTypeSerializer(serializers.Serializer):
    grant_type = serializers.ChoiceField(choices=GRANT_TYPES)


def token_exchange_input(data) -> dict:
    """The validated body of POST /v1/auth/token: its fields depend on `grant_type`."""
    grant = GrantTypeSerializer(data=data)
    grant.is_valid(raise_exception=True)
    body = GRANT_SERIALIZERS[grant.validated_data["grant_type"]](data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


class RefreshSerializer(StrictSerializer):
    refresh_token = StrictCharField(max_length=200)


class RevokeSerializer(StrictSerializer):
    token = StrictCharField(required=False, max_length=200)


class RevokeRequestSerializer(StrictSerializer):
    """What the OpenAPI document asks for. Authenticated with an access token, `token` may be left out
    (the presented token is revoked); with an API key it is required."""

    token = StrictCharField(
        max_length=200,
        help_text="The access or refresh token to revoke. May be left out when you authenticate with an access "
        "token: that token is then revoked.",
    )


class TokenResponseSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    refresh_token = serializers.CharField()


_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# What `allowed_origin_normalise` takes: http(s), a host of DNS labels (or `*.` and at least two labels), a port.
ORIGIN_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:\*\.{_LABEL}\.{_LABEL}(?:\.{_LABEL})*|{_LABEL}(?:\.{_LABEL})*)(?::[0-9]{{1,4}})?/?$"
)


@extend_schema_field({"type": "string", "maxLength": 255, "pattern": ORIGIN_PATTERN})
class AllowedOriginField(StrictCharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return allowed_origin_normalise(value)
        except InvalidOrigin as exc:
            raise serializers.ValidationError(str(exc), code="invalid_origin") from None


class PublishableKeyLimitsSerializer(StrictSerializer):
    """A publishable key's abuse limits; an omitted (or null) limit is the deployment's default."""

    visitor_requests_per_minute = StrictIntegerField(
        min_value=1, max_value=10000, required=False, allow_null=True, help_text="Requests per minute per visitor."
    )
    address_requests_per_minute = StrictIntegerField(
        min_value=1,
        max_value=100000,
        required=False,
        allow_null=True,
        help_text="Requests per minute per client IP address.",
    )
    max_message_chars = StrictIntegerField(
        min_value=1, max_value=32000, required=False, allow_null=True, help_text="Longest message a visitor may send."
    )


REQUIRE_SIGNATURE_HELP = "Requests with this key must be signed; the signing secret is shown once."
ALLOWED_ORIGINS_HELP = (
    "Publishable keys: the websites it may be used from (required), such as "
    "`https://www.acme.example`; `https://*.acme.example` for every subdomain. A bare `*` is refused."
)
IDENTITY_VERIFICATION_HELP = (
    "Publishable keys: `optional` or `required` identity verification of your logged-in users "
    "(`user_hash` = hex HMAC-SHA256(identity_secret, user_id)); the identity secret is shown once."
)


class ApiKeyCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    type = serializers.ChoiceField(
        choices=ApiKey.Type.choices,
        default=ApiKey.Type.SECRET,
        source="key_type",
        help_text="`secret` (`bh_live_`, for servers) or `publishable` (`pk_live_`, for the chat widget in browsers).",
    )
    require_signature = StrictBooleanField(default=False, help_text=REQUIRE_SIGNATURE_HELP)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="In the future.")
    bot_ids = serializers.ListField(
        child=StrictCharField(max_length=40),
        required=False,
        max_length=100,
        help_text="Publishable keys: the bots the key may chat with (required).",
    )
    allowed_origins = serializers.ListField(
        child=AllowedOriginField(max_length=255),
        required=False,
        max_length=100,
        help_text=ALLOWED_ORIGINS_HELP,
    )
    identity_verification = serializers.ChoiceField(
        choices=ApiKey.IdentityVerification.choices,
        required=False,
        default=ApiKey.IdentityVerification.OFF,
        help_text=IDENTITY_VERIFICATION_HELP,
    )
    limits = PublishableKeyLimitsSerializer(required=False)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.", code="invalid_expires_at")
        return value

    def validate(self, attrs):
        # Each type has its own fields (the two shapes of the OpenAPI document): sent at all, even empty,
        # a field of the other type is refused.
        publishable = attrs.get("key_type") == ApiKey.Type.PUBLISHABLE
        foreign = ("require_signature",) if publishable else PUBLISHABLE_ONLY_FIELDS
        for field in foreign:
            if field in self.initial_data:
                raise ValidationError(
                    f"{field} is for {'secret' if publishable else 'publishable'} keys only.",
                    code="publishable_key_option",
                    param=field,
                )
        return attrs


PUBLISHABLE_ONLY_FIELDS = ("bot_ids", "allowed_origins", "identity_verification", "limits")


class SecretKeyCreateSerializer(StrictSerializer):
    """The OpenAPI shape of a secret key's creation (`ApiKeyCreateSerializer` validates)."""

    name = StrictCharField(max_length=100)
    type = serializers.ChoiceField(choices=[ApiKey.Type.SECRET], required=False, help_text="Default `secret`.")
    require_signature = StrictBooleanField(required=False, help_text=REQUIRE_SIGNATURE_HELP)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="In the future.")


class PublishableKeyCreateSerializer(StrictSerializer):
    """The OpenAPI shape of a publishable key's creation (`ApiKeyCreateSerializer` validates)."""

    name = StrictCharField(max_length=100)
    type = serializers.ChoiceField(choices=[ApiKey.Type.PUBLISHABLE])
    bot_ids = serializers.ListField(
        child=StrictCharField(max_length=40),
        min_length=1,
        max_length=100,
        help_text="The bots the key may chat with (another tenant's bot: 404).",
    )
    allowed_origins = serializers.ListField(
        child=AllowedOriginField(max_length=255),
        min_length=1,
        max_length=100,
        help_text=ALLOWED_ORIGINS_HELP,
    )
    identity_verification = serializers.ChoiceField(
        choices=ApiKey.IdentityVerification.choices,
        required=False,
        help_text=IDENTITY_VERIFICATION_HELP,
    )
    limits = PublishableKeyLimitsSerializer(required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="In the future.")


class PublishableKeyLimitsOutputSerializer(serializers.Serializer):
    """The limits in force (the key's own or the deployment's default)."""

    visitor_requests_per_minute = serializers.IntegerField()
    address_requests_per_minute = serializers.IntegerField()
    max_message_chars = serializers.IntegerField()


class ApiKeySerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    type = serializers.ChoiceField(source="key_type", choices=ApiKey.Type.choices)
    prefix = serializers.CharField(source="display_prefix")
    revoked = serializers.SerializerMethodField()
    bot_ids = serializers.SerializerMethodField(help_text="Publishable keys: the bots it may chat with.")
    limits = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "object",
            "name",
            "type",
            "prefix",
            "require_signature",
            "bot_ids",
            "allowed_origins",
            "identity_verification",
            "limits",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked",
            "revoked_at",
        ]

    def get_object(self, obj) -> str:
        return "api_key"

    def get_revoked(self, obj) -> bool:
        return obj.revoked_at is not None

    def get_bot_ids(self, obj) -> list[str]:
        if not obj.is_publishable:
            return []
        return sorted(bot.public_id for bot in obj.bots.all())

    @extend_schema_field(PublishableKeyLimitsOutputSerializer(allow_null=True))
    def get_limits(self, obj):
        if not obj.is_publishable:
            return None
        names = ("visitor_requests_per_minute", "address_requests_per_minute", "max_message_chars")
        return {name: obj.limit(name) for name in names}


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A new key (`services.CreatedApiKey`): the key, and its signing or identity secret, appear in this response
    only."""

    key = serializers.CharField(read_only=True, help_text="The API key. Shown only in this response: store it now.")
    signing_secret = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="With require_signature: the signing secret (`bhsig_...`), shown only in this response.",
    )

    identity_secret = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="With identity_verification: the secret (`bhid_...`) your server computes user_hash with, "
        "shown only in this response. Never put it in a web page.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key", "signing_secret", "identity_secret"]

    def to_representation(self, created):
        return {
            **super().to_representation(created.api_key),
            "key": created.key,
            "signing_secret": created.signing_secret,
            "identity_secret": created.identity_secret,
        }
