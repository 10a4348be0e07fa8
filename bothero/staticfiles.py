"""Static files (Swagger UI from drf-spectacular-sidecar, the admin's CSS) served by the ASGI app itself.

`/docs` must work offline and without a separate web server, so the ASGI app
answers `STATIC_URL` itself, from the installed apps' static files (found by
the staticfiles finders: no `collectstatic` needed). Django's own handler streams files from a synchronous
iterator, which an ASGI server can only consume with a warning on every file;
these files are small, so they are read whole instead.
"""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.http import HttpResponse

from bothero.ids import random_base62

CACHE_CONTROL = "public, max-age=3600"


class StaticFiles(ASGIStaticFilesHandler):
    def serve(self, request):
        response = self._whole(super().serve(request))
        # These responses skip the middleware; they still get a request id like every other response.
        response["X-Request-Id"] = f"req_{random_base62(24)}"
        return response

    @staticmethod
    def _whole(response):
        if not response.streaming:
            return response
        try:
            body = b"".join(response.streaming_content)
        finally:
            response.close()
        whole = HttpResponse(body, status=response.status_code)
        for name, value in response.items():
            if name.lower() != "content-length":
                whole[name] = value
        whole["Cache-Control"] = CACHE_CONTROL
        return whole
