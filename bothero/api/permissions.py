"""The request pipeline after authentication: tenant → plan gate → request signature."""

from rest_framework.permissions import BasePermission

from bothero.api.principal import Principal
from bothero.api.signing import verify_request_signature
from bothero.errors import PermissionDeniedError


class IsTenantMember(BasePermission):
    """An authenticated principal of some tenant (otherwise DRF answers 401)."""

    def has_permission(self, request, view):
        return isinstance(request.user, Principal)


class HasApiAccess(BasePermission):
    """The plan gate, then the request signature when the key requires one."""

    def has_permission(self, request, view):
        tenant = request.user.tenant
        if tenant.status != "active":
            raise PermissionDeniedError("This account is suspended. Contact support.", code="tenant_suspended")
        if not tenant.plan.api_access:
            raise PermissionDeniedError(
                f"The {tenant.plan.name} plan does not include API access. Upgrade to Legend or above.",
                code="plan_upgrade_required",
            )
        api_key = request.user.api_key
        if api_key is not None and api_key.require_signature:
            verify_request_signature(request._request, secret=api_key.signing_secret, key_id=api_key.public_id)
        return True
