"""Read-only SQL behind the admin pages: counts and searches the domain services do not need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from herald.accounts.models import Credential, User
from herald.consent.models import Address, ConsentEvent
from herald.contacts.models import Contact
from herald.lists.models import MailingList, Subscription
from herald.sends.models import Delivery, DeliveryEvent, SingleSend


def _day(column: Any) -> ColumnElement[Any]:
    return func.date(column)


def _key(value: Any) -> str:
    """A day from either dialect (SQLite answers a string, PostgreSQL a date) as YYYY-MM-DD."""
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


class UiRepository:
    """Queries for dashboards, searches and counts, always scoped to one account."""

    def __init__(self, session: Session, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    def status_counts(self) -> dict[str, int]:
        """How many addresses the account has in each consent state."""
        stmt = (
            select(Address.status, func.count()).where(Address.account_id == self.account_id).group_by(Address.status)
        )
        return {status: int(n) for status, n in self.session.execute(stmt)}

    def recent_sends(self, limit: int = 8) -> Sequence[SingleSend]:
        """The latest sends that are not deleted, newest first."""
        stmt = (
            select(SingleSend)
            .where(SingleSend.account_id == self.account_id, SingleSend.deleted_at.is_(None))
            .order_by(SingleSend.id.desc())
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def daily_activity(self, days: int, *, today: date) -> dict[str, list[Any]]:
        """Per day over the last `days` days: messages sent, opens, bounces and unsubscribes (opt-outs)."""
        first = today - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day)
        labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
        series: dict[str, dict[str, int]] = {k: {} for k in ("sent", "opens", "bounces", "unsubscribes")}
        aid = self.account_id
        sent = (
            select(_day(Delivery.sent_at), func.count())
            .where(Delivery.account_id == aid, Delivery.sent_at >= since)
            .group_by(_day(Delivery.sent_at))
        )
        opens = (
            select(_day(DeliveryEvent.at), func.count())
            .where(DeliveryEvent.account_id == aid, DeliveryEvent.kind == "open", DeliveryEvent.at >= since)
            .group_by(_day(DeliveryEvent.at))
        )

        def consent_to(status: str) -> Select[Any]:
            return (
                select(_day(ConsentEvent.at), func.count())
                .where(
                    ConsentEvent.account_id == aid,
                    ConsentEvent.kind == "status",
                    ConsentEvent.to_status == status,
                    ConsentEvent.at >= since,
                )
                .group_by(_day(ConsentEvent.at))
            )

        queries: dict[str, Select[Any]] = {
            "sent": sent,
            "opens": opens,
            "bounces": consent_to("bounced"),
            "unsubscribes": consent_to("opted_out"),
        }
        for name, stmt in queries.items():
            for day, n in self.session.execute(stmt):
                if day is not None:
                    series[name][_key(day)] = int(n)
        return {"labels": labels, **{name: [by_day.get(d, 0) for d in labels] for name, by_day in series.items()}}

    def search_contacts(self, query: str, *, offset: int, limit: int) -> Sequence[tuple[Contact, str | None]]:
        """Contacts whose email or name contains `query` (any case), with their address status."""
        stmt = (
            select(Contact, Address.status)
            .outerjoin(Address, (Address.account_id == Contact.account_id) & (Address.email == Contact.email))
            .where(Contact.account_id == self.account_id)
        )
        text = query.strip().lower()
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            full_name = func.lower(func.coalesce(Contact.first_name, "") + " " + func.coalesce(Contact.last_name, ""))
            stmt = stmt.where(or_(Contact.email.like(like, escape="\\"), full_name.like(like, escape="\\")))
        stmt = stmt.order_by(Contact.id.desc()).offset(offset).limit(limit)
        return [(c, s) for c, s in self.session.execute(stmt)]

    def addresses_without_contact(self, query: str, *, limit: int) -> Sequence[Address]:
        """Known addresses with no contact (e.g. from list subscriptions), matching `query`."""
        stmt = select(Address).where(
            Address.account_id == self.account_id,
            ~select(Contact.id)
            .where(Contact.account_id == Address.account_id, Contact.email == Address.email)
            .exists(),
        )
        text = query.strip().lower()
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(Address.email.like(like, escape="\\"))
        return self.session.scalars(stmt.order_by(Address.id.desc()).limit(limit)).all()

    def actor_names(self, events: Sequence[ConsentEvent]) -> tuple[dict[int, str], dict[int, str]]:
        """User names and credential kinds named by ledger events, for the timeline."""
        user_ids = {e.user_id for e in events if e.user_id is not None}
        cred_ids = {e.credential_id for e in events if e.credential_id is not None}
        users: dict[int, str] = {}
        creds: dict[int, str] = {}
        if user_ids:
            stmt = select(User.id, User.name).where(User.account_id == self.account_id, User.id.in_(user_ids))
            users = {i: n for i, n in self.session.execute(stmt)}
        if cred_ids:
            c = select(Credential.id, Credential.kind).where(
                Credential.account_id == self.account_id, Credential.id.in_(cred_ids)
            )
            creds = {i: k for i, k in self.session.execute(c)}
        return users, creds

    def list_counts(self) -> dict[int, dict[str, int]]:
        """Per list: how many subscriptions are in each state."""
        stmt = (
            select(Subscription.list_id, Subscription.status, func.count())
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(MailingList.account_id == self.account_id)
            .group_by(Subscription.list_id, Subscription.status)
        )
        out: dict[int, dict[str, int]] = {}
        for list_id, status, n in self.session.execute(stmt):
            out.setdefault(list_id, {})[status] = int(n)
        return out

    def count_contacts(self, condition: ColumnElement[bool]) -> int:
        """How many of the account's contacts a compiled segment condition matches."""
        stmt = select(func.count()).select_from(Contact).where(Contact.account_id == self.account_id, condition)
        return int(self.session.scalar(stmt) or 0)
