"""ASGI entry point: HTTP through Django (static files first, oversized bodies refused before they are
read; the middleware chain in one thread hop, see `bothero.asgi_handler`), websockets through Channels'
router, and the lifespan's start-up (the embedding model loaded before the first connection is accepted,
see `bothero.lifespan`)."""

import os

from bothero.asgi_handler import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
# Every ASGI request runs in a fresh thread, where persistent connections cannot be reused:
# pool them instead (DB_POOL=false turns it off).
os.environ.setdefault("DB_POOL", "true")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up first)

from bothero.lifespan import lifespan  # noqa: E402
from bothero.middleware import BodySizeLimitASGI  # noqa: E402
from bothero.routing import websocket_urlpatterns  # noqa: E402
from bothero.staticfiles import StaticFiles  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": StaticFiles(BodySizeLimitASGI(django_asgi_app)),
        "websocket": URLRouter(websocket_urlpatterns),
        "lifespan": lifespan,
    }
)
