"""Base classes for every tenant-scoped endpoint: the one tenant guard.

Subclasses implement `safely_get_queryset(tenant)`; `get_queryset` and
`get_object` always go through it, so an endpoint cannot forget the tenant
filter, and another tenant's id is a 404 like an id that does not exist.
"""

from rest_framework import viewsets
from rest_framework.views import APIView

from bothero.errors import NotFoundError
from bothero.idempotency import idempotency_begin, idempotency_complete


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


class TenantMixin:
    @property
    def tenant(self):
        return self.request.user.tenant

    @property
    def publishable_key(self):
        """The publishable key behind this request (it narrows what the view may show), or None."""
        key = getattr(self.request.user, "api_key", None)
        return key if key is not None and key.is_publishable else None


class TenantAPIView(IdempotentPostMixin, TenantMixin, APIView):
    """A tenant-scoped endpoint that is not a collection of one model."""


class TenantViewSet(IdempotentPostMixin, TenantMixin, viewsets.GenericViewSet):
    """A tenant-scoped collection addressed by public id (`/things/:id`)."""

    lookup_url_kwarg = "id"
    not_found_code = "not_found"
    not_found_message = "No such object."

    def safely_get_queryset(self, tenant):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return self.safely_get_queryset(self.tenant)

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
