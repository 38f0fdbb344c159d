"""Signed values (for signed cookies): HMAC-SHA256 over the name, a timestamp and the value.

Format: ``2|<timestamp>|<base64url value>|<hex HMAC-SHA256>``, where the MAC covers
``<name>|2|<timestamp>|<base64url value>`` with the secret as key.

Promises: a value signed for one name does not verify under another; a value whose MAC
does not match (compared in constant time), that is older than ``max_age_days``, dated
more than ``clock_skew`` seconds in the future, or malformed in any way decodes to None
-- decoding never raises for client data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable

_VERSION = b"2"


def _key(secret: str | bytes) -> bytes:
    if not secret:
        raise ValueError("a non-empty secret is needed to sign values")
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _mac(secret: bytes, *parts: bytes) -> bytes:
    return hmac.new(secret, b"|".join(parts), hashlib.sha256).hexdigest().encode("ascii")


def create_signed_value(secret: str | bytes, name: str, value: str | bytes,
                        clock: Callable[[], float] = time.time) -> str:
    """Sign ``value`` for the cookie (or other) ``name``; the result is cookie-safe."""
    key = _key(secret)
    raw = value.encode("utf-8") if isinstance(value, str) else value
    stamp = str(int(clock())).encode("ascii")
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=")
    mac = _mac(key, name.encode("utf-8"), _VERSION, stamp, encoded)
    return b"|".join((_VERSION, stamp, encoded, mac)).decode("ascii")


def decode_signed_value(secret: str | bytes, name: str, signed: str | bytes | None,
                        max_age_days: float = 31, clock: Callable[[], float] = time.time,
                        clock_skew: float = 300) -> bytes | None:
    """The value ``signed`` carries, or None when it is missing, forged, too old or bad."""
    if not signed:
        return None
    key = _key(secret)
    try:
        data = signed.encode("ascii") if isinstance(signed, str) else signed
    except UnicodeEncodeError:
        return None
    parts = data.split(b"|")
    if len(parts) != 4 or parts[0] != _VERSION:
        return None
    _, stamp, encoded, mac = parts
    expected = _mac(key, name.encode("utf-8"), _VERSION, stamp, encoded)
    if not hmac.compare_digest(mac, expected):
        return None
    if not stamp.isdigit():
        return None
    when = int(stamp)
    now = clock()
    if when < now - max_age_days * 86400 or when > now + clock_skew:
        return None
    try:
        return base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
