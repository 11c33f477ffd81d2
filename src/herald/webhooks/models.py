"""Webhook table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from herald.db.base import Base, JSONType, utcnow


class Webhook(Base):
    """A receiver of account events, in the native or the Skycore format."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Fernet-encrypted: the plain secret is needed to sign each body.
    secret_enc: Mapped[str | None] = mapped_column(String(500), default=None)
    format: Mapped[str] = mapped_column(String(20), default="native")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
