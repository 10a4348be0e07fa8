"""The request pipeline after authentication: tenant → plan gate → request signature."""

from rest_framework.permissions import BasePermission

from accounts.services import tenant_check_api_access
from bothero.api.principal import Principal
from bothero.api.signing import verify_request_signature


class IsTenantMember(BasePermission):
    """An authenticated principal of some tenant (otherwise DRF answers 401)."""

    def has_permission(self, request, view):
        return isinstance(request.user, Principal)


class HasApiAccess(BasePermission):
    """The plan gate, then the request signature when the key requires one."""

    def has_permission(self, request, view):
        tenant_check_api_access(tenant=request.user.tenant)
        signing_key = request.user.signing_key
        if signing_key is not None:
            verify_request_signature(request._request, secret=signing_key.signing_secret, key_id=signing_key.public_id)
        return True
