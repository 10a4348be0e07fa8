from django.utils import timezone
from rest_framework import serializers

from accounts.models import ApiKey
from bothero.api.serializers import StrictBooleanField, StrictCharField, StrictSerializer

GRANT_TYPES = ("api_key", "password")


class TokenExchangeSerializer(StrictSerializer):
    grant_type = serializers.ChoiceField(choices=GRANT_TYPES)
    api_key = StrictCharField(required=False, max_length=200)
    email = serializers.EmailField(required=False)
    password = StrictCharField(required=False, max_length=200, style={"input_type": "password"})
    tenant_id = StrictCharField(
        required=False,
        max_length=40,
        help_text="grant_type password: the tenant to sign in to, for a member of several (default: the first).",
    )

    def validate(self, attrs):
        if attrs["grant_type"] == "api_key" and not attrs.get("api_key"):
            raise serializers.ValidationError({"api_key": "Required for grant_type 'api_key'."}, code="required")
        if attrs["grant_type"] == "password":
            for field in ("email", "password"):
                if not attrs.get(field):
                    raise serializers.ValidationError({field: "Required for grant_type 'password'."}, code="required")
        return attrs


class RefreshSerializer(StrictSerializer):
    refresh_token = StrictCharField(max_length=200)


class RevokeSerializer(StrictSerializer):
    token = StrictCharField(required=False, max_length=200)


class TokenResponseSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    refresh_token = serializers.CharField()


class ApiKeyCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    require_signature = StrictBooleanField(
        default=False, help_text="Requests with this key must be signed; the signing secret is shown once."
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.", code="invalid_expires_at")
        return value


class ApiKeySerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    prefix = serializers.CharField(source="display_prefix")
    revoked = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "object",
            "name",
            "prefix",
            "require_signature",
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


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A new key (`services.CreatedApiKey`): the key, and its signing secret, appear in this response only."""

    key = serializers.CharField(read_only=True, help_text="The API key. Shown only in this response: store it now.")
    signing_secret = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="With require_signature: the signing secret (`bhsig_...`), shown only in this response.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key", "signing_secret"]

    def to_representation(self, created):
        return {
            **super().to_representation(created.api_key),
            "key": created.key,
            "signing_secret": created.signing_secret,
        }
