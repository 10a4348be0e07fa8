"""The request pipeline after authentication: tenant → plan gate → request signature."""

from rest_framework.permissions import BasePermission

from accounts.models import Membership
from accounts.services import tenant_check_api_access
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
        tenant_check_api_access(tenant=request.user.tenant)
        signing_key = request.user.signing_key
        if signing_key is not None:
            verify_request_signature(request._request, secret=signing_key.signing_secret, key_id=signing_key.public_id)
        return True


class ManagesTenant(BasePermission):
    """Managing API keys and webhooks (any write, and reading keys) is for owners and admins.

    Roles belong to users: a request made with a user's access token (password grant) carries the
    member's role, and a `member` gets 403 `role_required`. An API key (and a token exchanged for
    one) acts for the tenant: only owners and admins can create keys, so a key holder already has
    their rights.
    """

    read_only_methods = ("GET", "HEAD", "OPTIONS")

    def has_permission(self, request, view):
        principal = request.user
        if principal.user is None:
            return True
        if request.method in self.read_only_methods and not getattr(view, "reading_needs_admin", False):
            return True
        role = (
            Membership.objects.filter(tenant=principal.tenant, user=principal.user)
            .values_list("role", flat=True)
            .first()
        )
        if role in (Membership.Role.OWNER, Membership.Role.ADMIN):
            return True
        raise PermissionDeniedError(
            "Only the tenant's owners and admins may manage API keys and webhooks.", code="role_required"
        )
