from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeyGrantSerializer,
    ApiKeySerializer,
    PasswordGrantSerializer,
    PublishableKeyCreateSerializer,
    RefreshSerializer,
    RevokeRequestSerializer,
    RevokeSerializer,
    SecretKeyCreateSerializer,
    TokenResponseSerializer,
    token_exchange_input,
)
from bothero.api.views import MANAGER_PERMISSIONS, TenantAPIView, TenantViewSet
from bothero.errors import ValidationError


def _client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _token_body(issued: services.IssuedTokens) -> dict:
    return {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "refresh_token": issued.refresh_token,
    }


class TokenView(APIView):
    """Exchange credentials for a short-lived access token and a refresh token."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        operation_id="auth_token",
        request=PolymorphicProxySerializer(
            component_name="TokenExchangeRequest",
            serializers={"api_key": ApiKeyGrantSerializer, "password": PasswordGrantSerializer},
            resource_type_field_name="grant_type",
        ),
        responses={200: TokenResponseSerializer},
        auth=[],
        summary="Exchange an API key or email and password for an access token",
    )
    def post(self, request):
        issued = services.token_exchange(client_address=_client_address(request), **token_exchange_input(request.data))
        return Response(_token_body(issued))


class RefreshView(APIView):
    """Rotate a refresh token: both tokens are replaced; reusing an old one revokes the family."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        operation_id="auth_refresh",
        request=RefreshSerializer,
        responses={200: TokenResponseSerializer},
        auth=[],
        summary="Rotate a refresh token for a new access and refresh token",
    )
    def post(self, request):
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.token_refresh(
            refresh_token=data.validated_data["refresh_token"], client_address=_client_address(request)
        )
        return Response(_token_body(issued))


class RevokeView(TenantAPIView):
    """Revoke an access token (the one presented, or one in the body) or a refresh token's family."""

    delete_takes_body = True

    @extend_schema(
        operation_id="auth_revoke",
        request=RevokeRequestSerializer,
        responses={
            204: OpenApiResponse(description="Revoked."),
            404: OpenApiResponse(description="No such token in this tenant (`token_not_found`)."),
        },
        summary="Revoke the presented access token, or the access or refresh token in the body",
    )
    def delete(self, request):
        data = RevokeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = data.validated_data.get("token")
        if token:
            services.token_revoke(tenant=self.tenant, token=token)
        elif request.user.access_token is not None:
            services.access_token_revoke(access_token=request.user.access_token)
        else:
            raise ValidationError(
                'You authenticated with an API key: send the token to revoke as {"token": ...}, '
                "or revoke the key with DELETE /v1/auth/keys/:id.",
                code="missing_param",
                param="token",
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyViewSet(mixins.ListModelMixin, TenantViewSet):
    """The tenant's API keys. A key is shown once, when it is created; only its hash is stored."""

    permission_classes = MANAGER_PERMISSIONS
    # Listing keys shows who can reach the API: owners and admins only, like managing them.
    reading_needs_admin = True

    # The create response holds the plaintext key: an Idempotency-Key must not keep a copy of it.
    idempotency_keeps_success_body = False
    serializer_class = ApiKeySerializer
    not_found_code = "api_key_not_found"
    not_found_message = "No such API key."

    def safely_get_queryset(self, tenant):
        return selectors.api_key_list(tenant=tenant)

    @extend_schema(operation_id="api_keys_list", summary="List API keys")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="api_keys_create",
        request=PolymorphicProxySerializer(
            component_name="ApiKeyCreateRequest",
            serializers={"secret": SecretKeyCreateSerializer, "publishable": PublishableKeyCreateSerializer},
            resource_type_field_name=None,
        ),
        responses={201: ApiKeyCreatedSerializer},
        summary="Create an API key (the key is shown once)",
    )
    def create(self, request):
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.api_key_create(tenant=self.tenant, created_by=request.user.user, **data.validated_data)
        return Response(ApiKeyCreatedSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="api_keys_retrieve", summary="Get an API key")
    def retrieve(self, request, id):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(operation_id="api_keys_revoke", responses={200: ApiKeySerializer}, summary="Revoke an API key")
    def destroy(self, request, id):
        api_key = services.api_key_revoke(tenant=self.tenant, public_id=id)
        return Response(ApiKeySerializer(api_key).data)
