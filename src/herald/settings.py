"""Settings from the environment (HERALD_*), with the embedded default needing nothing installed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob Herald reads; CONTRACT.md documents the public ones."""

    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore")

    database_url: str = "sqlite:///./herald-data/herald.db"
    smtp_url: str = "maildir:./herald-data/outbox"
    base_url: str | None = None
    secret_key: str | None = None
    data_dir: Path = Path("./herald-data")
    host: str = "127.0.0.1"
    port: int = 8025
    # `herald serve` web processes (uvicorn workers); with more than one, the worker loop runs in the
    # supervising process instead, so it still runs exactly once.
    web_workers: int = Field(default=1, ge=1)
    # Per-credential API rate limit in requests per minute; 0 (the default) switches it off.
    rate_limit_per_minute: int = 0
    # Largest request body any edge accepts, in bytes (dialects answer in their own error format).
    max_body_bytes: int = 5 * 1024 * 1024
    # Unconfirmed subscriptions older than this are purged with their personal data.
    unconfirmed_retention_days: int = 60
    # Seconds between scheduler ticks of the worker loop.
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    inbound_smtp_port: int | None = None
    # Shared secret for POST /inbound/messages (`Authorization: Bearer …`); unset, only loopback clients may post.
    inbound_secret: str | None = None
    # DKIM signing of outgoing mail; all three set switches it on (the key file is PEM, RSA or Ed25519).
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key_path: Path | None = None
    # Delivery pipeline: recipients claimed per batch, how long a claim is leased, and SMTP 4xx retries.
    delivery_batch_size: int = Field(default=200, gt=0)
    delivery_lease_seconds: float = Field(default=300, gt=0)
    delivery_max_attempts: int = Field(default=6, gt=0)
    delivery_retry_seconds: float = Field(default=60, ge=0)
    # Durable jobs (webhooks, postbacks, opt-in mails): every retry delay is multiplied by this (tests shrink it),
    # a claimed job is leased this long, and a webhook receiver gets this long to answer.
    job_retry_scale: float = Field(default=1.0, ge=0)
    job_lease_seconds: int = Field(default=60, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    def public_base_url(self) -> str:
        """The URL put into unsubscribe, tracking and confirmation links."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @cached_property
    def resolved_secret(self) -> str:
        """HERALD_SECRET_KEY, or one generated once into the data folder and kept there."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose, so one secret never signs and encrypts with the same key."""
        return hmac.new(self.resolved_secret.encode(), f"herald:{purpose}".encode(), hashlib.sha256).digest()
