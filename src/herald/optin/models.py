"""OptinRule and OptinRecord tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from herald.db.base import Base, utcnow


class OptinRule(Base):
    """Which message confirms a subscription to a list (`list_id` null: the account's catch-all)."""

    __tablename__ = "optin_rules"
    __table_args__ = (
        UniqueConstraint("account_id", "list_id"),
        UniqueConstraint("account_id", "catch_all_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Plain integer, no foreign key: deleting the list leaves the rule as it is (seed 004).
    list_id: Mapped[int | None] = mapped_column(default=None)
    message_id: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(300))
    paused: Mapped[bool] = mapped_column(default=False)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    # The catch-all slot: "*" on the account's catch-all, NULL otherwise; unique with account_id so
    # the database itself refuses a second catch-all.
    catch_all_key: Mapped[str | None] = mapped_column(String(1), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OptinRecord(Base):
    """One emailOptIn: an opt-in email queued for an unconfirmed subscription, and what came of it."""

    __tablename__ = "optin_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int | None] = mapped_column(default=None)
    message_id: Mapped[int | None] = mapped_column(default=None)
    completed: Mapped[bool] = mapped_column(default=False)
    confirmed: Mapped[bool] = mapped_column(default=False)
    error: Mapped[bool] = mapped_column(default=False)
    # 'Failed', 'Blacklisted', 'Hard bounce', 'Soft bounce'
    errortype: Mapped[str | None] = mapped_column(String(20), default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    message_ref: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
