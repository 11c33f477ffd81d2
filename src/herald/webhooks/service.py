"""Webhooks of an account: where its events go, in which format, signed with which secret.

Any http(s) URL is accepted, loopback and private addresses included (CONTRACT.md): receivers are often
on the same machine or network. The secret is stored encrypted (it is needed in plain to sign each body)
and never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select
from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.errors import Invalid, NotFound
from herald.security import Cipher
from herald.webhooks.models import Webhook
from herald.webhooks.outbox import EVENTS
from herald.webhooks.repository import WebhookRepository

FORMATS = ("native", "skycore")
# The Skycore postback only has codes for list subscribe (N303) and unsubscribe (N304).
SKYCORE_EVENTS = ("list.subscribed", "list.unsubscribed")
MAX_URL = 2000
MAX_SECRET = 200


class WebhookService:
    """Create, list and delete the actor's account's webhooks."""

    def __init__(self, session: Session, actor: Actor, *, cipher: Cipher | None = None) -> None:
        self.session = session
        self.actor = actor
        self.repo = WebhookRepository(session)
        self._cipher = cipher

    def create(
        self, url: str, *, events: Sequence[str] | None = None, secret: str | None = None, format: str = "native"
    ) -> Webhook:
        """A new webhook; omitted events mean every event its format can carry."""
        if format not in FORMATS:
            raise Invalid("format", f"must be one of {', '.join(FORMATS)}")
        allowed = SKYCORE_EVENTS if format == "skycore" else EVENTS
        hook = Webhook(
            account_id=self.actor.account_id,
            url=check_url(url),
            events=_events(events, allowed, format),
            secret_enc=self._encrypt(secret),
            format=format,
        )
        self.repo.add(hook)
        return hook

    def get(self, webhook_id: int) -> Webhook:
        """A webhook of the account, or NotFound."""
        hook = self.repo.webhook(self.actor.account_id, webhook_id)
        if hook is None:
            raise NotFound("webhook", webhook_id)
        return hook

    def webhooks_query(self) -> Select[Any]:
        """The account's webhooks, for paging."""
        return self.repo.webhooks_query(self.actor.account_id)

    def delete(self, webhook_id: int) -> None:
        """Remove a webhook; events emitted afterwards no longer reach it."""
        self.repo.delete(self.get(webhook_id))

    def _encrypt(self, secret: str | None) -> str | None:
        if secret is None or secret == "":
            return None
        if len(secret) > MAX_SECRET:
            raise Invalid("secret", f"must be at most {MAX_SECRET} characters")
        if self._cipher is None:
            raise RuntimeError("WebhookService needs the container's cipher to store a secret")
        return self._cipher.encrypt(secret)


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; Invalid("url") otherwise."""
    value = (url or "").strip()
    if not value:
        raise Invalid("url", "is required")
    if len(value) > MAX_URL:
        raise Invalid("url", f"must be at most {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise Invalid("url", "must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise Invalid("url", "is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Invalid("url", "must be an http or https URL")
    if not parts.hostname:
        raise Invalid("url", "must name a host")
    return value


def _events(events: Sequence[str] | None, allowed: Sequence[str], format: str) -> list[str]:
    if events is None:
        return list(allowed)
    if not events:
        raise Invalid("events", "must name at least one event")
    chosen: list[str] = []
    for event in events:
        if event not in allowed:
            raise Invalid("events", f"{event!r} is not an event a {format} webhook can receive")
        if event not in chosen:
            chosen.append(event)
    return chosen
