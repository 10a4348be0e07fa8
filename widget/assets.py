"""`widget.js` as served: read once per process, with its version (a content hash), ETag and gzip body."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

WIDGET_JS = Path(__file__).resolve().parent / "assets" / "widget.js"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    version: str  # the first 12 hex digits of the body's SHA-256: `/widget.js?v=<version>` is immutable
    etag: str


@lru_cache(maxsize=1)
def widget_js() -> Asset:
    body = WIDGET_JS.read_bytes()
    version = hashlib.sha256(body).hexdigest()[:12]
    # mtime=0: the same bytes on every server, so any process may answer a conditional request.
    return Asset(body=body, gzipped=gzip.compress(body, 9, mtime=0), version=version, etag=f'"{version}"')
