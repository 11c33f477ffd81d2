"""SingleSend, Delivery, DeliveryEvent and SendLink tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from herald.db.base import Base, JSONType, utcnow

# A token that does not begin with its row's id in 8 hex digits. The PostgreSQL launch makes every token begin
# with it (sends.audience.ordered_token), which makes those unique by the primary key and found through it, so
# on PostgreSQL only other tokens (SQLite's, a test's, rows from before) are kept in the unique token index: a
# 1 M launch no longer writes one index entry per row there. Literal text, so a query can repeat it and the
# planner proves that the partial index applies.
NOT_ID_TOKEN = "substr(token, 1, 8) <> lpad(to_hex(id), 8, '0')"

# AllsTechnology status codes, which Herald uses natively too.
STATUS_INITIATE, STATUS_READY, STATUS_RUNNING, STATUS_COMPLETED = 0, 1, 2, 3


class SingleSend(Base):
    """A campaign sent once to a resolved audience."""

    __tablename__ = "single_sends"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    utr: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"), default=None)
    template_html: Mapped[str | None] = mapped_column(Text, default=None)
    template_json: Mapped[str | None] = mapped_column(Text, default=None)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id", ondelete="SET NULL"), default=None)
    # The unsubscribe group (topic) whose unsubscribers are left out and which the footer offers.
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="SET NULL"), default=None)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"), default=None)
    subject: Mapped[str] = mapped_column(String(998))
    preheader: Mapped[str] = mapped_column(String(500), default="")
    # [{"table": "contacts_"|"segments_", "id": "3"}]
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    exclusions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    schedule_type: Mapped[int] = mapped_column(default=0)
    schedule_date: Mapped[str | None] = mapped_column(String(10), default=None)
    schedule_time: Mapped[str | None] = mapped_column(String(8), default=None)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    status: Mapped[int] = mapped_column(default=STATUS_INITIATE, index=True)
    paused: Mapped[bool] = mapped_column(default=False)
    cancelled: Mapped[bool] = mapped_column(default=False)
    # Counts by reason of the addresses left out at launch: {"opted_out": 3, "bounced": 1, ...}.
    skipped: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One recipient of one send: the unit workers claim, lease, send and retry."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("send_id", "address_id"),
        # One index serves the claim (per running send: status, then due time and id in claim order) and every
        # per-send count by status, where two indexes did: one less to write per launched or updated row
        # (1 M launch on PostgreSQL, same quiet machine: 2.09 -> 1.97 x the bare INSERT ... SELECT).
        Index("ix_deliveries_claim", "send_id", "status", "next_attempt_at", "id"),
        # Every token on SQLite (random there); on PostgreSQL only those not derived from the id (NOT_ID_TOKEN).
        Index("uq_deliveries_token", "token", unique=True, postgresql_where=text(NOT_ID_TOKEN)),
    )

    # No foreign keys here: an audience of a million rows is one INSERT … SELECT, and PostgreSQL checks
    # every foreign key row by row (four checks took longer than the insert itself). Sends and addresses
    # are never hard-deleted while deliveries point at them (sends are soft-deleted; erasure and contact
    # deletion unlink deliveries explicitly, see consent.privacy_repository and contacts.repository).
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column()
    send_id: Mapped[int] = mapped_column()
    # Not indexed: no query looks deliveries up by address alone (the privacy pages match the address OR
    # its email, which is unindexed, so they scan anyway), and the index cost 1.5 s of a 1 M launch.
    address_id: Mapped[int | None] = mapped_column()
    contact_id: Mapped[int | None] = mapped_column(default=None)
    email: Mapped[str | None] = mapped_column(String(320))
    # queued | sending | sent | failed | bounced | suppressed
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # Unique: by uq_deliveries_token, and on PostgreSQL by the id it begins with (see NOT_ID_TOKEN).
    token: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(String(300), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class DeliveryEvent(Base):
    """Something that happened to a delivery after sending: open, click, bounce, complaint, unsubscribe."""

    __tablename__ = "delivery_events"
    __table_args__ = (Index("ix_delivery_events_send_id_kind", "send_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("single_sends.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    link_id: Mapped[int | None] = mapped_column(default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)


class SendLink(Base):
    """A link that appears in a send; click redirects go only to these (no open redirect)."""

    __tablename__ = "send_links"
    __table_args__ = (UniqueConstraint("send_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("single_sends.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    url: Mapped[str] = mapped_column(Text)
