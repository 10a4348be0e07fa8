"""Writes and rules for tenants, members, API keys, tokens and usage."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from accounts.keys import (
    API_KEY_PREFIX,
    PUBLISHABLE_KEY_PREFIX,
    display_prefix,
    generate_api_key,
    generate_salt,
    hash_api_key,
)
from accounts.models import (
    AccessToken,
    ApiKey,
    Membership,
    Plan,
    RefreshToken,
    Tenant,
    TokenFamily,
    UsageCounter,
    UsageDay,
)
from bothero import ratelimit
from bothero.api.authentication import authenticate_access_token, authenticate_api_key
from bothero.errors import AuthenticationError, NotFoundError, PermissionDeniedError, RateLimitError, ValidationError
from bots.models import Bot

REFRESH_TOKEN_PREFIX = "bhrt_"
REFRESH_TOKEN_MAX_LENGTH = 200


# --- tenants ---------------------------------------------------------------------


@transaction.atomic
def tenant_create(
    *, name: str, plan_slug: str = "legend", owner_email: str | None = None, owner_password: str | None = None
) -> Tenant:
    """Create a tenant on a plan, with its owner when an email is given."""
    plan = Plan.objects.get(slug=plan_slug)
    tenant = Tenant.objects.create(name=name, plan=plan)
    if owner_email:
        User = get_user_model()
        user = User.objects.filter(username=owner_email).first()
        if user is None:
            user = User(username=owner_email, email=owner_email)
            if owner_password:
                user.set_password(owner_password)
            else:
                user.set_unusable_password()
            user.save()
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OWNER)
    return tenant


def tenant_check_api_access(*, tenant: Tenant) -> None:
    """The plan gate: raise 403 unless `tenant` is active and its plan includes the API."""
    if tenant.status != Tenant.Status.ACTIVE:
        raise PermissionDeniedError("This account is suspended. Contact support.", code="tenant_suspended")
    if not tenant.plan.api_access:
        raise PermissionDeniedError(
            f"The {tenant.plan.name} plan does not include API access. Upgrade to Legend or above.",
            code="plan_upgrade_required",
        )


def tenant_change_plan(*, tenant: Tenant, plan: Plan) -> Tenant:
    """Move `tenant` to `plan`; limits and the plan gate apply from the next request."""
    tenant.plan = plan
    tenant.save(update_fields=["plan", "updated_at"])
    return tenant


@transaction.atomic
def tenant_set_status(*, tenant: Tenant, status: str) -> Tenant:
    """Suspend or reactivate `tenant`. Suspending also ends its outstanding token sessions."""
    if status not in Tenant.Status.values:
        raise ValueError(f"Unknown tenant status {status!r}.")
    tenant.status = status
    tenant.save(update_fields=["status", "updated_at"])
    if status == Tenant.Status.SUSPENDED:
        # A suspended tenant's outstanding sessions end now, not when they expire.
        TokenFamily.objects.filter(tenant=tenant, revoked_at__isnull=True).update(revoked_at=timezone.now())
    return tenant


# --- API keys ----------------------------------------------------------------------


def publishable_key_not_allowed() -> PermissionDeniedError:
    return PermissionDeniedError(
        "A publishable key (pk_live_) may only be used by the chat widget: reading its bots' public settings, "
        "chatting, feedback and leads. Use a secret key (bh_live_) on your server for everything else.",
        code="publishable_key_not_allowed",
    )


@dataclass
class CreatedApiKey:
    api_key: ApiKey
    key: str
    signing_secret: str | None
    identity_secret: str | None = None


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    key_type: str = ApiKey.Type.SECRET,
    require_signature: bool = False,
    expires_at: datetime | None = None,
    created_by=None,
    bot_ids: list[str] | None = None,
    allowed_origins: list[str] | None = None,
    identity_verification: str = ApiKey.IdentityVerification.OFF,
    limits: dict | None = None,
) -> CreatedApiKey:
    """Create a key; the plaintext key (and signing or identity secret) are returned here only.

    A publishable key needs the tenant's bots it may chat with (another
    tenant's bot id is `bot_not_found`) and the origins it may be used from
    (canonical, see `accounts.origins`); it cannot require signatures, which
    a browser could not compute without holding the secret.
    """
    publishable = key_type == ApiKey.Type.PUBLISHABLE
    if not publishable:
        given = [
            name
            for name, value in (
                ("bot_ids", bot_ids),
                ("allowed_origins", allowed_origins),
                ("limits", limits),
                ("identity_verification", identity_verification != ApiKey.IdentityVerification.OFF or None),
            )
            if value
        ]
        if given:
            raise ValidationError(
                f"{given[0]} is for publishable keys only (type 'publishable').",
                code="publishable_key_option",
                param=given[0],
            )
    else:
        if require_signature:
            raise ValidationError(
                "A publishable key runs in browsers, which cannot sign requests: require_signature must be false.",
                code="publishable_key_option",
                param="require_signature",
            )
        if not bot_ids:
            raise ValidationError("List the bots this key may chat with.", code="required", param="bot_ids")
        if not allowed_origins:
            raise ValidationError(
                "List the websites (origins) this key may be used from.", code="required", param="allowed_origins"
            )
    bots = []
    if publishable:
        found = {bot.public_id: bot for bot in Bot.objects.filter(tenant=tenant, public_id__in=bot_ids)}
        missing = [bot_id for bot_id in bot_ids if bot_id not in found]
        if missing:
            raise NotFoundError(f"No such bot: {missing[0]}.", code="bot_not_found", param="bot_ids")
        bots = list(found.values())
    key = generate_api_key(PUBLISHABLE_KEY_PREFIX if publishable else API_KEY_PREFIX)
    limits = limits or {}
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        key_type=key_type,
        display_prefix=display_prefix(key),
        key_hash=hash_api_key(key),
        require_signature=require_signature,
        signing_salt=generate_salt() if require_signature else "",
        expires_at=expires_at,
        created_by=created_by,
        allowed_origins=list(dict.fromkeys(allowed_origins or [])),
        identity_verification=identity_verification,
        identity_salt=generate_salt() if identity_verification != ApiKey.IdentityVerification.OFF else "",
        visitor_requests_per_minute=limits.get("visitor_requests_per_minute"),
        address_requests_per_minute=limits.get("address_requests_per_minute"),
        max_message_chars=limits.get("max_message_chars"),
    )
    if bots:
        api_key.bots.set(bots)
    return CreatedApiKey(
        api_key=api_key, key=key, signing_secret=api_key.signing_secret, identity_secret=api_key.identity_secret
    )


def user_hash_compute(*, identity_secret: str, user_id: str) -> str:
    """What a customer's server sends beside a user's id: hex HMAC-SHA256(identity_secret, user_id)."""
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def visitor_identity_verify(*, api_key: ApiKey, user_id: str, user_hash: str) -> str:
    """The verified user id of a publishable key's visitor ("" for an anonymous visitor).

    A user id must come with its correct hash (compared in constant time);
    with verification `required`, anonymous visitors are refused; with it
    `off`, a user id cannot be verified and is refused rather than trusted.
    """
    mode = api_key.identity_verification
    if not user_id:
        if mode == ApiKey.IdentityVerification.REQUIRED:
            raise PermissionDeniedError(
                "This chat is for signed-in users: the page must identify the visitor with a user_id and its "
                "user_hash.",
                code="identity_verification_required",
            )
        return ""
    if mode == ApiKey.IdentityVerification.OFF:
        raise PermissionDeniedError(
            "A user_id was sent, but identity verification is off for this key, so it cannot be trusted. "
            "Turn it on (identity_verification) or leave the user id out.",
            code="identity_verification_off",
        )
    expected = user_hash_compute(identity_secret=api_key.identity_secret, user_id=user_id)
    if not hmac.compare_digest(expected.encode(), user_hash.strip().lower().encode()):
        raise PermissionDeniedError(
            "The user_hash does not match the user_id: compute it on your server as hex "
            "HMAC-SHA256(identity_secret, user_id).",
            code="invalid_user_hash",
        )
    return user_id


@transaction.atomic
def api_key_revoke(*, tenant: Tenant, public_id: str) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().filter(tenant=tenant, public_id=public_id).first()
    if api_key is None:
        raise NotFoundError(f"No such API key ({public_id}).", code="api_key_not_found", param="id")
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        # Tokens exchanged for this key die with it.
        TokenFamily.objects.filter(api_key=api_key, revoked_at__isnull=True).update(revoked_at=api_key.revoked_at)
    return api_key


# --- access and refresh tokens -------------------------------------------------------


@dataclass
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    access_token_row: AccessToken


def _hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def _issue_tokens(family: TokenFamily) -> IssuedTokens:
    access_row, access_token = AccessToken.objects.create(
        user=family.user, tenant=family.tenant, family=family, expiry=settings.ACCESS_TOKEN_TTL
    )
    refresh_token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    RefreshToken.objects.create(
        family=family,
        token_hash=_hash_refresh_token(refresh_token),
        expires_at=timezone.now() + settings.REFRESH_TOKEN_TTL,
    )
    return IssuedTokens(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=int(settings.ACCESS_TOKEN_TTL.total_seconds()),
        access_token_row=access_row,
    )


def _failure_key(client_address: str) -> str:
    return f"auth-failures:{client_address}"


def _check_failure_budget(client_address: str) -> None:
    """Refuse any exchange, even a correct one, from an address that failed too often this minute."""
    budget = ratelimit.peek(_failure_key(client_address), limit=settings.AUTH_FAILURES_PER_MINUTE)
    if not budget.allowed:
        raise RateLimitError(
            "Too many failed sign-in attempts from this address. Retry after the time in Retry-After.",
            code="too_many_failed_attempts",
            headers={"Retry-After": str(budget.reset_seconds)},
        )


def _record_failure(client_address: str) -> None:
    ratelimit.hit(_failure_key(client_address), limit=settings.AUTH_FAILURES_PER_MINUTE)


def _user_tenant(user, tenant_id: str | None) -> Tenant:
    """The tenant the user signs in to: the one named, or their first membership."""
    memberships = Membership.objects.select_related("tenant__plan").filter(user=user)
    if tenant_id:
        memberships = memberships.filter(tenant__public_id=tenant_id)
    membership = memberships.order_by("id").first()
    if membership is None:
        raise AuthenticationError("The email or password is wrong.", code="invalid_credentials")
    return membership.tenant


def _count_against_rate_limit(tenant: Tenant) -> None:
    """An exchange is an API call of the tenant: it uses the plan's requests per minute like any other."""
    result = ratelimit.hit_tenant(tenant)
    if not result.allowed:
        raise RateLimitError(
            f"Too many requests. Retry in {result.reset_seconds} seconds.",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(result.reset_seconds), **result.headers()},
        )


def _authenticate_password(email: str, password: str):
    User = get_user_model()
    user = User.objects.filter(username__iexact=email, is_active=True).first()
    if user is None:
        # Hash anyway, so the answer takes as long whether or not the email exists.
        User().set_password(password)
        raise AuthenticationError("The email or password is wrong.", code="invalid_credentials")
    if not user.check_password(password):
        raise AuthenticationError("The email or password is wrong.", code="invalid_credentials")
    return user


def token_exchange(
    *,
    grant_type: str,
    client_address: str,
    api_key: str | None = None,
    email: str | None = None,
    password: str | None = None,
    tenant_id: str | None = None,
) -> IssuedTokens:
    """Exchange an API key or an email and password for an access and a refresh token.

    Failed exchanges are counted per client address and limited more strictly
    than ordinary traffic (AUTH_FAILURES_PER_MINUTE). The plan gate and the
    tenant's rate limit apply here too. A member of several tenants names one
    with `tenant_id` (otherwise their first membership is used).
    """
    _check_failure_budget(client_address)
    try:
        if grant_type == "api_key":
            key = authenticate_api_key(api_key or "")
            tenant, user = key.tenant, key.created_by
        elif grant_type == "password":
            user = _authenticate_password(email or "", password or "")
            tenant, key = _user_tenant(user, tenant_id), None
        else:
            raise AuthenticationError(f"Unsupported grant_type {grant_type!r}.", code="unsupported_grant_type")
    except AuthenticationError:
        _record_failure(client_address)
        raise
    if key is not None and key.is_publishable:
        # A token would carry none of the key's limits (bots, origins, visitors): a publishable key is used as is.
        raise publishable_key_not_allowed()
    tenant_check_api_access(tenant=tenant)
    _count_against_rate_limit(tenant)
    with transaction.atomic():
        family = TokenFamily.objects.create(tenant=tenant, api_key=key, user=user)
        return _issue_tokens(family)


class RefreshTokenError(AuthenticationError):
    default_code = "invalid_refresh_token"


def token_refresh(*, refresh_token: str, client_address: str) -> IssuedTokens:
    """Rotate a refresh token. Presenting one that was already used revokes its whole family."""
    _check_failure_budget(client_address)
    now = timezone.now()
    row = None
    if refresh_token.startswith(REFRESH_TOKEN_PREFIX) and len(refresh_token) <= REFRESH_TOKEN_MAX_LENGTH:
        row = (
            RefreshToken.objects.select_related("family__tenant__plan", "family__api_key")
            .filter(token_hash=_hash_refresh_token(refresh_token))
            .first()
        )
    failure = None
    if row is None or row.expires_at <= now:
        failure = "The refresh token is not valid or has expired."
    elif row.family.revoked_at is not None:
        failure = "The refresh token was revoked."
    elif row.family.api_key is not None and not row.family.api_key.is_active:
        failure = "The API key behind this refresh token is no longer active."
    elif row.used_at is not None:
        failure = _revoke_reused_family(row, now)
    if failure:
        _record_failure(client_address)
        raise RefreshTokenError(failure)
    # Refused by the plan gate or the rate limit, the token stays unused: the client can retry it.
    tenant_check_api_access(tenant=row.family.tenant)
    _count_against_rate_limit(row.family.tenant)
    # Claiming the row with a conditional UPDATE makes rotation race-free: of two
    # concurrent refreshes with one token, exactly one wins; the other is a reuse.
    if not RefreshToken.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now):
        _record_failure(client_address)
        raise RefreshTokenError(_revoke_reused_family(row, now))
    return _issue_tokens(row.family)


def _revoke_reused_family(row: RefreshToken, now) -> str:
    """A rotated refresh token came back, so it leaked: end every session descended from it."""
    TokenFamily.objects.filter(pk=row.family_id).update(revoked_at=now)
    return "The refresh token was already used; every token issued from it is now revoked."


def token_revoke(*, tenant: Tenant, token: str) -> None:
    """Revoke an access or a refresh token of `tenant` (and, for a refresh token, its family).

    Another tenant's token, or one that does not exist, is `token_not_found`.
    """
    if token.startswith(REFRESH_TOKEN_PREFIX):
        row = RefreshToken.objects.filter(token_hash=_hash_refresh_token(token), family__tenant=tenant).first()
        if row is None:
            raise NotFoundError("No such token.", code="token_not_found", param="token")
        TokenFamily.objects.filter(pk=row.family_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
        return
    try:
        access = authenticate_access_token(token)
    except AuthenticationError:
        raise NotFoundError("No such token.", code="token_not_found", param="token") from None
    if access.tenant_id != tenant.id:
        raise NotFoundError("No such token.", code="token_not_found", param="token")
    access.delete()


def access_token_revoke(*, access_token: AccessToken) -> None:
    """End one access token now (its refresh token, if unused, can still mint a new one)."""
    access_token.delete()


def tokens_purge_expired(*, now: datetime | None = None) -> int:
    """Delete expired access and refresh tokens, then families left with neither; returns rows deleted.

    An expired token is refused anyway; a used refresh token is kept until it
    expires, so reusing it is still recognised (and revokes its family) until then.
    """
    now = now or timezone.now()
    deleted = AccessToken.objects.filter(expiry__lt=now).delete()[0]
    deleted += RefreshToken.objects.filter(expires_at__lt=now).delete()[0]
    deleted += TokenFamily.objects.filter(access_tokens__isnull=True, refresh_tokens__isnull=True).delete()[0]
    return deleted


# --- usage ----------------------------------------------------------------------------


# What every statement that counts usage (`usage_increment_ctes`) selects first, in this order: a CTE runs when
# the result first reads it, and one no result reads runs at the end, in an order PostgreSQL does not promise
# (in practice the day's row before the month's). Read first, the tenant's month row is locked, then today's,
# before any other row of the statement (a conversation's, say). Storing an answer read neither, held today's
# row and the conversation's while waiting for the month's, which a customer's message (in its transaction
# until commit) held while waiting for today's: a deadlock under bench/load.py.
USAGE_FIRST = ("(SELECT messages FROM usage)", "(SELECT messages FROM usage_day)")


def current_period_start(now: datetime | None = None):
    now = now or timezone.now()
    return now.date().replace(day=1)


def usage_increment(
    *, tenant: Tenant, messages: int = 0, prompt_tokens: int = 0, completion_tokens: int = 0, api_requests: int = 0
) -> int:
    """Add to this month's and today's counters in one atomic statement (a row per tenant and month, and day).

    Returns the month's message count after the addition (the quota check needs no second read).
    """
    ctes = usage_increment_ctes(
        tenant_id=tenant.pk,
        messages=messages,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        api_requests=api_requests,
    )
    sql = "WITH " + ", ".join(f"{name} AS ({cte})" for name, cte, _ in ctes) + " SELECT " + ", ".join(USAGE_FIRST)
    with connection.cursor() as cursor:
        cursor.execute(sql, [param for _, _, params in ctes for param in params])
        return cursor.fetchone()[0]


def usage_increment_ctes(
    *,
    tenant_id: int,
    messages: int = 0,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    api_requests: int = 0,
    now: datetime | None = None,
) -> list[tuple[str, str, list]]:
    """`usage_increment`'s two upserts as (name, sql, params) CTEs, for callers that make them part of a
    larger statement: `usage` (the month's row, `RETURNING messages`) and `usage_day` (today's row, UTC).
    The statement must select `USAGE_FIRST` before any other result (the lock order).

    `messages` may be -1 (a message given back); the counts never go below zero.
    """
    now = now or timezone.now()
    values = [messages, api_requests, prompt_tokens, completion_tokens]
    ctes = []
    for name, model, key, period in (
        ("usage", UsageCounter, "period_start", current_period_start(now)),
        ("usage_day", UsageDay, "day", now.date()),
    ):
        table = model._meta.db_table
        sql = f"""
            INSERT INTO {table} (tenant_id, {key}, messages, api_requests, prompt_tokens, completion_tokens)
            VALUES (%s, %s, GREATEST(%s, 0), %s, %s, %s)
            ON CONFLICT (tenant_id, {key}) DO UPDATE SET
                messages = GREATEST({table}.messages + %s, 0),
                api_requests = {table}.api_requests + EXCLUDED.api_requests,
                prompt_tokens = {table}.prompt_tokens + EXCLUDED.prompt_tokens,
                completion_tokens = {table}.completion_tokens + EXCLUDED.completion_tokens
            RETURNING messages
        """
        ctes.append((name, sql, [tenant_id, period, *values, messages]))
    return ctes
