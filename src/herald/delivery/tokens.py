"""Signed public-link tokens for one delivery (or one subscription, for opt-in confirmation).

Each link purpose has its own token, so an open-pixel token cannot be replayed as an unsubscribe:
    "u"  one-click unsubscribe  /u/{token}
    "p"  preferences page       /p/{token}
    "o"  open pixel             /t/o/{token}.gif
    "c"  click redirect         /t/c/{token}/{link}
The payload is the delivery's random `token` column (unguessable on its own); the signature makes a
tampered or made-up token fail before any database look-up.

Four tokens are made per recipient, so they are a plain `{delivery token}.{MAC}` (HMAC-SHA256 truncated to
128 bits, base64url) rather than a timed serializer: about 2 µs each instead of about 120 µs.
"""

from __future__ import annotations

import base64
import hmac
import re
from functools import lru_cache

from herald.security import TokenSigner

UNSUBSCRIBE, PREFERENCES, OPEN, CLICK = "u", "p", "o", "c"

_MAC_BYTES = 16
_PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@lru_cache(maxsize=64)
def _keyed(signer: TokenSigner, purpose: str) -> hmac.HMAC:
    # An HMAC with its key already absorbed: each MAC copies it instead of hashing the padded key again
    # (1.3 instead of 1.9 µs, four times per recipient). Only copies are ever updated, so threads may share it.
    return hmac.new(signer.subkey(f"delivery.{purpose}"), digestmod="sha256")


def _mac(signer: TokenSigner, purpose: str, payload: str) -> str:
    mac = _keyed(signer, purpose).copy()
    mac.update(payload.encode())
    return base64.urlsafe_b64encode(mac.digest()[:_MAC_BYTES]).rstrip(b"=").decode()


def make(signer: TokenSigner, purpose: str, delivery_token: str) -> str:
    """The URL token for a delivery and a purpose."""
    if not _PAYLOAD_RE.match(delivery_token):
        raise ValueError("a delivery token is URL-safe text of at most 64 characters")
    return f"{delivery_token}.{_mac(signer, purpose, delivery_token)}"


def read(signer: TokenSigner, purpose: str, token: str) -> str:
    """The delivery token inside a URL token; ValueError when tampered, foreign or of another purpose."""
    payload, _, mac = token.partition(".")
    if not mac or not _PAYLOAD_RE.match(payload):
        raise ValueError("invalid token")
    if not hmac.compare_digest(mac.encode(), _mac(signer, purpose, payload).encode()):
        raise ValueError("invalid token")
    return payload
