"""Signed public-link tokens for one delivery (or one subscription, for opt-in confirmation).

Each link purpose has its own token, so an open-pixel token cannot be replayed as an unsubscribe:
    "u"  one-click unsubscribe  /u/{token}
    "p"  preferences page       /p/{token}
    "o"  open pixel             /t/o/{token}.gif
    "c"  click redirect         /t/c/{token}/{link}
The payload is the delivery's random `token` column (unguessable on its own); the signature makes a
tampered or made-up token fail before any database look-up.
"""

from __future__ import annotations

from herald.security import TokenSigner

UNSUBSCRIBE, PREFERENCES, OPEN, CLICK = "u", "p", "o", "c"


def make(signer: TokenSigner, purpose: str, delivery_token: str) -> str:
    """The URL token for a delivery and a purpose."""
    return signer.sign(f"delivery.{purpose}", delivery_token)


def read(signer: TokenSigner, purpose: str, token: str) -> str:
    """The delivery token inside a URL token; ValueError when tampered, foreign or of another purpose."""
    value = signer.unsign(f"delivery.{purpose}", token)
    if not isinstance(value, str):
        raise ValueError("invalid token")
    return value
