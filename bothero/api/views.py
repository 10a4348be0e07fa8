"""Base classes for every tenant-scoped endpoint: the one tenant guard (after PostHog's routing.py).

Subclasses implement `safely_get_queryset(tenant)`; `get_queryset` and
`get_object` always go through it, so an endpoint cannot forget the tenant
filter, and another tenant's id is a 404 like an id that does not exist.
Overriding `get_queryset`, `get_object`, `get_permissions` or
`get_authenticators` in a subclass fails at import (`__init_subclass__`); the
one escape hatch is named to be seen in review: `dangerously_get_queryset`.
A bot named by id in a body or query is looked up with `self.tenant_bot(...)`
(404 `bot_not_found` for another tenant's bot); a list that `?bot_id=` narrows answers with
`self.list_by_bot(query serializer, selector)`. `bothero/tests/test_tenant_isolation.py`
walks every URL pattern with another tenant's ids.
"""

from rest_framework import viewsets
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from bothero.api.permissions import ManagesTenant
from bothero.errors import NotFoundError
from bothero.idempotency import idempotency_begin, idempotency_complete
from bots.selectors import bot_get

# What a tenant-scoped view may not override, and what to do instead.
PROTECTED_METHODS = {
    "get_queryset": "implement safely_get_queryset(tenant) (or, reviewed, dangerously_get_queryset)",
    "get_object": "it looks up safely_get_queryset(tenant) by public id; set lookup_url_kwarg",
    "get_permissions": "add to permission_classes",
    "get_authenticators": "add to authentication_classes",
}


class _ReplayResponse(Exception):
    def __init__(self, response):
        self.response = response


class IdempotentPostMixin:
    """Honour `Idempotency-Key` on every POST after auth, plan gate and rate limit ran.

    A view whose successful POST answers a secret shown once sets
    `idempotency_keeps_success_body = False`: its response is then not stored.
    """

    _idempotency_record = None
    idempotency_keeps_success_body = True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and key is not None and getattr(request.user, "tenant", None) is not None:
            record, replay = idempotency_begin(tenant=request.user.tenant, key=key, request=request._request)
            if replay is not None:
                raise _ReplayResponse(replay)
            self._idempotency_record = record

    def handle_exception(self, exc):
        if isinstance(exc, _ReplayResponse):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._idempotency_record is not None:
            idempotency_complete(
                self._idempotency_record, response, keep_success_body=self.idempotency_keeps_success_body
            )
            self._idempotency_record = None
        return response


def _guard(method):
    method.tenant_guard = True
    return method


class TenantMixin:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for method, instead in PROTECTED_METHODS.items():
            if method in cls.__dict__ and not getattr(cls.__dict__[method], "tenant_guard", False):
                raise TypeError(f"{cls.__qualname__}.{method} bypasses the tenant guard: {instead}.")

    @property
    def tenant(self):
        return self.request.user.tenant

    def tenant_bot(self, public_id: str, *, param: str = "bot_id"):
        """The tenant's bot with this id; another tenant's (or none) is 404 `bot_not_found` on `param`."""
        return bot_get(tenant=self.tenant, public_id=public_id, param=param)

    @property
    def publishable_key(self):
        """The publishable key behind this request (it narrows what the view may show), or None."""
        key = getattr(self.request.user, "api_key", None)
        return key if key is not None and key.is_publishable else None


# The views that manage API keys and webhooks: the pipeline every view runs, then the role check.
MANAGER_PERMISSIONS = [*api_settings.DEFAULT_PERMISSION_CLASSES, ManagesTenant]


class TenantAPIView(IdempotentPostMixin, TenantMixin, APIView):
    """A tenant-scoped endpoint that is not a collection of one model."""


class TenantViewSet(IdempotentPostMixin, TenantMixin, viewsets.GenericViewSet):
    """A tenant-scoped collection addressed by public id (`/things/:id`)."""

    lookup_url_kwarg = "id"
    not_found_code = "not_found"
    not_found_message = "No such object."

    def safely_get_queryset(self, tenant):
        raise NotImplementedError

    def dangerously_get_queryset(self):
        """WARNING: bypasses the tenant filter. Only for a view whose rows are not the tenant's (none yet)."""
        raise NotImplementedError

    @_guard
    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        try:
            return self.dangerously_get_queryset()
        except NotImplementedError:
            pass
        return self.safely_get_queryset(self.tenant)

    @_guard
    def get_object(self):
        public_id = self.kwargs[self.lookup_url_kwarg]
        try:
            obj = self.get_queryset().get(public_id=public_id)
        except self.get_queryset().model.DoesNotExist:
            raise NotFoundError(
                f"{self.not_found_message} ({public_id})", code=self.not_found_code, param="id"
            ) from None
        self.check_object_permissions(self.request, obj)
        return obj

    def list_by_bot(self, query_serializer_class, selector):
        """A list answer for a collection a `bot_id` query parameter narrows: the query string validated by
        `query_serializer_class`, its `bot_id` looked up in the tenant (another tenant's bot is 404
        `bot_not_found`), then `selector(tenant=, bot=, **the query's other fields)` paginated and serialized
        with `serializer_class`."""
        query = query_serializer_class(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        filters = dict(query.validated_data)
        bot_id = filters.pop("bot_id", None)
        bot = self.tenant_bot(bot_id) if bot_id else None
        page = self.paginate_queryset(selector(tenant=self.tenant, bot=bot, **filters))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
