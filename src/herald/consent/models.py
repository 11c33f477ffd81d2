"""Address, ConsentEvent (the append-only ledger), Topic, TopicUnsubscribe, Suppression."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from herald.db.base import Base, index_where_set, utcnow


class Address(Base):
    """The consent state of one normalised email address within one account."""

    __tablename__ = "addresses"
    __table_args__ = (
        UniqueConstraint("account_id", "email"),
        # Only temporary opt-outs are looked up by their end (the expiry sweep).
        index_where_set("ix_addresses_opted_out_until", "opted_out_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique (account_id, email) index serves account_id lookups too.
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), default="unknown", index=True)
    # For a temporary opt-out: when it ends, and the state it returns to then.
    opted_out_until: Mapped[datetime | None] = mapped_column(default=None)
    status_before_optout: Mapped[str | None] = mapped_column(String(20), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConsentEvent(Base):
    """One change of consent, never updated or deleted (erasure blanks only the personal fields)."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_address_id_id", "address_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Which edge made the change: api, allclients, mailkit, skycore, alls, signupto, ui, cli, public, inbound,
    # worker, system.
    source: Mapped[str] = mapped_column(String(30))
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # What changed: "status", "topic", "subscription", "erasure", "purge", "suppressed".
    kind: Mapped[str] = mapped_column(String(20), default="status")
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    list_id: Mapped[int | None] = mapped_column(default=None)
    topic_id: Mapped[int | None] = mapped_column(default=None)
    send_id: Mapped[int | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)


class Topic(Base):
    """A subject an address can unsubscribe from alone (Mailkit topic = AllsTechnology unsubscribe group)."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TopicUnsubscribe(Base):
    """An address's unsubscribe from one topic."""

    __tablename__ = "topic_unsubscribes"

    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """A keyed hash of an erased address with its last suppressing state, so it is never mailed again."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("account_id", "email_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
