"""Liveness and readiness probes; unauthenticated, outside the API pipeline."""

from django.db import connection
from django.http import JsonResponse

from bothero.redis_client import get_redis


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"error: {exc.__class__.__name__}"
    client = get_redis()
    if client is None:
        checks["redis"] = "not configured"
    else:
        try:
            client.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {exc.__class__.__name__}"
    ready = all(value in ("ok", "not configured") for value in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
