"""`Idempotency-Key` on POST: the first response is kept for 24 h and replayed.

A repeat with the same key and the same request replays the first response; a
different request under the same key → 422 `idempotency_key_reused`; a repeat
while the first is still running → 409 `idempotency_request_in_progress`.
Keys are scoped to the tenant. Server errors (5xx) and streamed responses are
not kept, so the client may retry them. A claim left `in_progress` by a process
that died is given up after IDEMPOTENCY_LOCK_TIMEOUT, so the key is not stuck.
"""

import hashlib
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from bothero.errors import ConflictError, UnprocessableError, ValidationError
from bothero.models import IdempotencyRecord

MAX_KEY_LENGTH = 255
# Printable ASCII without spaces: a header value survives proxies unchanged, and servers strip
# the spaces around it, so a key of spaces would arrive empty. The OpenAPI document says the same.
KEY_PATTERN = rf"^[!-~]{{1,{MAX_KEY_LENGTH}}}$"
_KEY_RE = re.compile(KEY_PATTERN)


def request_fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.get_full_path()}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def idempotency_begin(*, tenant, key: str, request) -> tuple[IdempotencyRecord | None, HttpResponse | None]:
    """Claim `key` for this request. Returns (record to complete, None) or (None, replayed response)."""
    if not _KEY_RE.fullmatch(key):
        raise ValidationError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces.",
            code="invalid_idempotency_key",
            param="Idempotency-Key",
        )
    fingerprint = request_fingerprint(request)
    now = timezone.now()
    IdempotencyRecord.objects.filter(tenant=tenant, key=key, created_at__lt=now - settings.IDEMPOTENCY_TTL).delete()
    IdempotencyRecord.objects.filter(
        tenant=tenant,
        key=key,
        status=IdempotencyRecord.Status.IN_PROGRESS,
        created_at__lt=now - settings.IDEMPOTENCY_LOCK_TIMEOUT,
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(tenant=tenant, key=key, request_fingerprint=fingerprint)
        return record, None
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(tenant=tenant, key=key).first()
    if existing is None:  # deleted by its owner (a 5xx) between our insert and this read
        raise ConflictError(
            "A request with this Idempotency-Key is in progress.", code="idempotency_request_in_progress"
        )
    if existing.request_fingerprint != fingerprint:
        raise UnprocessableError(
            "This Idempotency-Key was used with a different request. Use a new key.", code="idempotency_key_reused"
        )
    if existing.status == IdempotencyRecord.Status.IN_PROGRESS:
        raise ConflictError(
            "A request with this Idempotency-Key is still in progress. Retry later.",
            code="idempotency_request_in_progress",
        )
    if existing.response_withheld:
        raise ConflictError(
            f"A request with this Idempotency-Key already succeeded ({existing.response_status}). Its response "
            "held a secret that is shown only once, so it is not replayed: list the resources to find what it "
            "created.",
            code="idempotency_response_withheld",
        )
    replay = HttpResponse(
        bytes(existing.response_body or b""),
        status=existing.response_status,
        content_type=existing.response_content_type or "application/json",
    )
    replay["Idempotent-Replayed"] = "true"
    return None, replay


def idempotency_complete(record: IdempotencyRecord, response, *, keep_success_body: bool = True) -> None:
    """Keep the response for replay, or release the key when it must not be replayed.

    `keep_success_body=False` is for responses that carry a secret shown once:
    the key is used up, but the body is not written to the database.
    """
    if response.status_code >= 500 or response.streaming:
        record.delete()
        return
    if hasattr(response, "render") and not response.is_rendered:
        response.render()
    withheld = not keep_success_body and 200 <= response.status_code < 300
    record.status = IdempotencyRecord.Status.COMPLETED
    record.response_status = response.status_code
    record.response_body = None if withheld else response.content
    record.response_content_type = response.get("Content-Type", "application/json")
    record.response_withheld = withheld
    record.save(
        update_fields=["status", "response_status", "response_body", "response_content_type", "response_withheld"]
    )


def idempotency_purge_expired(*, now=None) -> int:
    """Delete records older than IDEMPOTENCY_TTL (they are never replayed again); returns how many."""
    now = now or timezone.now()
    return IdempotencyRecord.objects.filter(created_at__lt=now - settings.IDEMPOTENCY_TTL).delete()[0]
