"""API key format: `bh_live_` (secret) or `pk_live_` (publishable) + 32 random base62 characters
+ a 6-character CRC32 checksum.

The checksum (as in GitHub's tokens) lets a secret scanner, or our own
authentication, recognise a well-formed key offline before any database query.
The prefix says at a glance whether a key may be shipped to a browser.
"""

import hashlib
import secrets
import zlib

from bothero.ids import BASE62, random_base62

API_KEY_PREFIX = "bh_live_"
PUBLISHABLE_KEY_PREFIX = "pk_live_"
KEY_PREFIXES = (API_KEY_PREFIX, PUBLISHABLE_KEY_PREFIX)
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
API_KEY_LENGTH = len(API_KEY_PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
DISPLAY_PREFIX_LENGTH = len(API_KEY_PREFIX) + 4


def _base62_encode(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(BASE62[remainder])
    return "".join(reversed(digits))


def _checksum(random_part: str) -> str:
    return _base62_encode(zlib.crc32(random_part.encode()), CHECKSUM_LENGTH)


def generate_api_key(prefix: str = API_KEY_PREFIX) -> str:
    random_part = random_base62(RANDOM_LENGTH)
    return f"{prefix}{random_part}{_checksum(random_part)}"


def is_well_formed_api_key(candidate: str) -> bool:
    """A secret or publishable key with a matching checksum (both prefixes have the same length)."""
    if len(candidate) != API_KEY_LENGTH or not candidate.startswith(KEY_PREFIXES):
        return False
    body = candidate[len(API_KEY_PREFIX) :]
    random_part, checksum = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
    if any(ch not in BASE62 for ch in body):
        return False
    return secrets.compare_digest(checksum, _checksum(random_part))


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


def generate_salt() -> str:
    return secrets.token_hex(16)
