"""Secrets: generation, hashing at rest, constant-time checks, encryption and signed public tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeTimedSerializer


def new_secret(nbytes: int = 24) -> str:
    """A random URL-safe secret."""
    return secrets.token_urlsafe(nbytes)


def new_hex(nchars: int = 32) -> str:
    """A random lowercase hex string of `nchars` characters."""
    return secrets.token_hex((nchars + 1) // 2)[:nchars]


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a random secret; random secrets need no slow hash (passwords use argon2)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time check of a presented secret against its stored hash."""
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def constant_time_equals(a: str, b: str) -> bool:
    """Compare two strings without leaking where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())


class Cipher:
    """Fernet encryption for secrets that must be recoverable (Sign-Up.to keys, webhook secrets)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(key[:32]))

    def encrypt(self, plain: str) -> str:
        """Encrypt a secret for storage."""
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt a stored secret; raises ValueError when the key changed or the value was tampered with."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt stored secret") from exc


class TokenSigner:
    """Signed, URL-safe tokens for public pages (unsubscribe, preferences, confirmation, tracking)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._key, salt=f"herald.{purpose}")

    def sign(self, purpose: str, payload: Any) -> str:
        """A token carrying `payload` for one purpose; a token of one purpose is refused for another."""
        return str(self._serializer(purpose).dumps(payload))

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose, for plain HMACs where a timed serializer is too slow (per recipient)."""
        return hmac.digest(self._key, f"herald.{purpose}".encode(), "sha256")

    def unsign(self, purpose: str, token: str, *, max_age: int | None = None) -> Any:
        """The payload of a valid token, or ValueError for a tampered, foreign or expired one."""
        try:
            return self._serializer(purpose).loads(token, max_age=max_age)
        except BadSignature as exc:
            raise ValueError("invalid token") from exc


def hmac_sha256_hex(key: bytes, data: bytes) -> str:
    """Hex HMAC-SHA256, used for webhook signatures and keyed address hashes."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()
