"""The browser side, served by the API itself: `/widget.js` and the hosted chat page `/chat/<bot_id>?key=pk_…`."""

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from widget import selectors
from widget.assets import widget_js

# The snippet's URL has no version: caches keep it briefly and revalidate it by ETag (a 304 is tiny);
# a versioned URL (`?v=`, the hosted page's) never changes, so it is cached for a year.
UNVERSIONED_CACHE = "public, max-age=300"
VERSIONED_CACHE = "public, max-age=31536000, immutable"
# The hosted page runs our script only and talks to this API only ('unsafe-inline' styles: the shadow root's).
HOSTED_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@require_safe
def widget_script(request):
    asset = widget_js()
    versioned = request.GET.get("v") == asset.version
    cache_control = VERSIONED_CACHE if versioned else UNVERSIONED_CACHE
    if asset.etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
    elif "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(asset.gzipped, content_type="text/javascript; charset=utf-8")
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(asset.body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = asset.etag
    response["Cache-Control"] = cache_control
    # Loaded by other websites' pages (also those that isolate themselves with COEP).
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


@require_safe
def chat_page(request, bot_id: str):
    """A full-page chat with one bot, for a shareable link; only for a live publishable key of that bot."""
    bot = selectors.hosted_chat_bot(bot_id=bot_id, key=request.GET.get("key", ""))
    if bot is None:
        response = render(request, "widget/chat_not_found.html", status=404)
    else:
        response = render(
            request,
            "widget/chat_page.html",
            {"bot": bot, "key": request.GET["key"], "version": widget_js().version},
        )
    # The key is public, but the page's address should not travel to the links a bot's answer holds.
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Security-Policy"] = HOSTED_PAGE_CSP
    response["Cache-Control"] = "no-store"
    return response
