"""InboundMessage table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from herald.db.base import Base, utcnow


class InboundMessage(Base):
    """A raw bounce or complaint as received, with what Herald made of it."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), default=None)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"), default=None)
    # dsn | arf | unknown
    kind: Mapped[str] = mapped_column(String(10))
    # hard_bounce | soft_bounce | complaint | unmatched | ignored
    outcome: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[str | None] = mapped_column(Text, default=None)
