"""Bearer authentication: an API key (`bh_live_...` or publishable `pk_live_...`) or an access token (`bhat_...`).

Access tokens are django-rest-knox tokens (`accounts.AccessToken`, stored as a
SHA-512 digest). They are looked up here rather than through knox's
`TokenAuthentication`, which assumes every token has a user and prunes a
user's other tokens on each call; ours belong to a tenant (a user is optional)
and die with their token family.
"""

from datetime import timedelta

from django.utils import timezone
from knox.crypto import hash_token
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.keys import KEY_PREFIXES, hash_api_key, is_well_formed_api_key
from accounts.models import AccessToken, ApiKey
from bothero.api.principal import Principal
from bothero.errors import WWW_AUTHENTICATE, AuthenticationError

ACCESS_TOKEN_PREFIX = "bhat_"
ACCESS_TOKEN_MAX_LENGTH = 200
LAST_USED_RESOLUTION = timedelta(minutes=1)


def credential_from_header(request) -> str | None:
    header = get_authorization_header(request).split()
    if not header:
        return None
    if header[0].lower() != b"bearer" or len(header) != 2:
        raise AuthenticationError(
            "The Authorization header must be 'Bearer <credential>'.", code="invalid_authorization_header"
        )
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationError("The credential is not valid.", code="invalid_credentials") from None


def authenticate_api_key(raw_key: str) -> ApiKey:
    """Find the active key for `raw_key`, or raise AuthenticationError."""
    if not is_well_formed_api_key(raw_key):
        raise AuthenticationError("The API key is not valid.", code="invalid_api_key")
    try:
        api_key = ApiKey.objects.select_related("tenant__plan").get(key_hash=hash_api_key(raw_key))
    except ApiKey.DoesNotExist:
        raise AuthenticationError("The API key is not valid.", code="invalid_api_key") from None
    if api_key.revoked_at is not None:
        raise AuthenticationError("This API key has been revoked.", code="api_key_revoked")
    if not api_key.is_active:
        raise AuthenticationError("This API key has expired.", code="api_key_expired")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        # One write a minute at most: last-used is for humans, not an audit log.
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


def authenticate_access_token(raw_token: str) -> AccessToken:
    """Find the live access token for `raw_token`, or raise AuthenticationError."""
    invalid = AuthenticationError(
        "The access token is not valid, has expired or was revoked.", code="invalid_access_token"
    )
    if not raw_token.startswith(ACCESS_TOKEN_PREFIX) or len(raw_token) > ACCESS_TOKEN_MAX_LENGTH:
        raise invalid
    # The digest is the primary key: one indexed lookup, no comparison loop.
    token = (
        AccessToken.objects.select_related("tenant__plan", "family__api_key", "user")
        .filter(digest=hash_token(raw_token))
        .first()
    )
    if token is None or token.family.revoked_at is not None:
        raise invalid
    if token.expiry is not None and token.expiry <= timezone.now():
        raise AuthenticationError(
            "The access token has expired. Get a new one from /v1/auth/refresh.", code="access_token_expired"
        )
    if token.user is not None and not token.user.is_active:
        raise invalid
    return token


def principal_for_credential(credential: str) -> Principal:
    if credential.startswith(KEY_PREFIXES):
        api_key = authenticate_api_key(credential)
        return Principal(tenant=api_key.tenant, api_key=api_key)
    if credential.startswith(ACCESS_TOKEN_PREFIX):
        token = authenticate_access_token(credential)
        return Principal(tenant=token.tenant, user=token.user, access_token=token)
    raise AuthenticationError("The credential is neither an API key nor an access token.", code="invalid_credentials")


class BearerAuthentication(BaseAuthentication):
    def authenticate(self, request):
        credential = credential_from_header(request)
        if credential is None:
            return None
        principal = principal_for_credential(credential)
        return principal, principal.access_token or principal.api_key

    def authenticate_header(self, request):
        return WWW_AUTHENTICATE
