from rest_framework import serializers

from accounts.models import ApiKey


class TokenRequestSerializer(serializers.Serializer):
    grant_type = serializers.ChoiceField(choices=["api_key", "password"])
    api_key = serializers.CharField(required=False, max_length=200)
    email = serializers.EmailField(required=False)
    password = serializers.CharField(required=False, max_length=200, style={"input_type": "password"})

    def validate(self, attrs):
        if attrs["grant_type"] == "api_key" and not attrs.get("api_key"):
            raise serializers.ValidationError({"api_key": "Required for grant_type 'api_key'."}, code="required")
        if attrs["grant_type"] == "password":
            for field in ("email", "password"):
                if not attrs.get(field):
                    raise serializers.ValidationError({field: "Required for grant_type 'password'."}, code="required")
        return attrs


class RefreshRequestSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=200)


class RevokeRequestSerializer(serializers.Serializer):
    token = serializers.CharField(required=False, max_length=200)


class TokenResponseSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField(default="bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    refresh_token = serializers.CharField()


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    require_signature = serializers.BooleanField(default=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


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
    key = serializers.CharField(help_text="The API key. Shown only in this response: store it now.")
    signing_secret = serializers.CharField(
        allow_null=True, help_text="With require_signature: the signing secret, shown only in this response."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key", "signing_secret"]
