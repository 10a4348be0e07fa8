"""Django's ASGI handler, with the middleware chain run as one synchronous call per request.

Every view of the API is synchronous (DRF), and so are most of Django's
middleware hooks. Django's own ASGIHandler builds the chain in async mode,
where each `MiddlewareMixin` hook (`process_request`, `process_response`) is
a separate hop from the event loop to the request's thread and back: about
fourteen per request here, which measured 5.5–6.3 ms for `GET /healthz` on
the 2-core machine against 1.1 ms for a bare ASGI app. Built in sync mode (as
under WSGI) and entered through one `sync_to_async` in the request's
thread-sensitive context, the chain costs one hop: 2.8 ms. The response
itself is still sent by the async handler, so async streaming responses (the
chat's SSE) flow from the event loop as before, and an async view would still
work (Django runs it with `async_to_sync`).
"""

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


def get_asgi_application() -> SyncChainASGIHandler:
    """Like `django.core.asgi.get_asgi_application`, with `SyncChainASGIHandler`."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
