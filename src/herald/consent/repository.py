"""SQL for addresses, the consent ledger, topics and topic unsubscribes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from herald.consent.models import Address, ConsentEvent, Suppression, Topic, TopicUnsubscribe
from herald.consent.rules import OPTED_OUT


class ConsentRepository:
    """Reads and writes consent rows; the ledger is insert-only here."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def address(self, account_id: int, email: str) -> Address | None:
        """The address row for a normalised email, or None."""
        stmt = select(Address).where(Address.account_id == account_id, Address.email == email)
        return self.session.scalars(stmt).first()

    def address_by_id(self, account_id: int, address_id: int) -> Address | None:
        """The address with this id in the account, or None."""
        addr = self.session.get(Address, address_id)
        return addr if addr is not None and addr.account_id == account_id else None

    def address_state(
        self, account_id: int, *, email: str | None = None, address_id: int | None = None
    ) -> Address | None:
        """A detached Address holding only what a status read needs (id, email, status, opt-out dates), found
        by normalised email or id within the account: one Core query, no identity-map work (hot read paths)."""
        stmt, value = (_address_state(True), email) if email is not None else (_address_state(False), address_id)
        row = self.session.connection().execute(stmt, {"account_id": account_id, "key": value}).first()
        if row is None:
            return None
        return Address(
            id=row[0],
            account_id=account_id,
            email=row[1],
            status=row[2],
            opted_out_until=row[3],
            status_before_optout=row[4],
        )

    def topic_flags(self, account_id: int, address_id: int, *, enabled_only: bool = False) -> list[tuple[Any, ...]]:
        """The account's topics by id as (id, name, description, enabled, unsubscribed) in one query."""
        params = {"account_id": account_id, "address_id": address_id}
        return [tuple(r) for r in self.session.connection().execute(_topic_flags(enabled_only), params)]

    def lock_address(self, address: Address) -> Address:
        """Re-read an address with a row lock (PostgreSQL), so concurrent transitions serialise."""
        stmt = select(Address).where(Address.id == address.id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one()

    def add(self, obj: Address | ConsentEvent | Topic | TopicUnsubscribe | Suppression) -> None:
        """Stage a new row and give it its id."""
        self.session.add(obj)
        self.session.flush()

    def events(self, address_id: int, *, after_id: int = 0, limit: int = 100) -> Sequence[ConsentEvent]:
        """Ledger entries of an address, oldest first, keyset-paged by id."""
        stmt = (
            select(ConsentEvent)
            .where(ConsentEvent.address_id == address_id, ConsentEvent.id > after_id)
            .order_by(ConsentEvent.id)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def topic(self, account_id: int, topic_id: int) -> Topic | None:
        """A topic of the account, or None."""
        topic = self.session.get(Topic, topic_id)
        return topic if topic is not None and topic.account_id == account_id else None

    def topics(self, account_id: int, *, enabled_only: bool = False) -> Sequence[Topic]:
        """The account's topics by id."""
        stmt = select(Topic).where(Topic.account_id == account_id).order_by(Topic.id)
        if enabled_only:
            stmt = stmt.where(Topic.enabled.is_(True))
        return self.session.scalars(stmt).all()

    def unsubscribed_topic_ids(self, address_id: int) -> set[int]:
        """Topics this address unsubscribed from."""
        stmt = select(TopicUnsubscribe.topic_id).where(TopicUnsubscribe.address_id == address_id)
        return set(self.session.scalars(stmt))

    def topic_unsubscribe(self, address_id: int, topic_id: int) -> TopicUnsubscribe | None:
        """The unsubscribe row, or None."""
        return self.session.get(TopicUnsubscribe, (address_id, topic_id))

    def remove_topic_unsubscribe(self, address_id: int, topic_id: int) -> None:
        """Resubscribe an address to a topic."""
        self.session.execute(
            delete(TopicUnsubscribe).where(
                TopicUnsubscribe.address_id == address_id, TopicUnsubscribe.topic_id == topic_id
            )
        )

    def expired_optouts(self, now: datetime, *, limit: int = 500) -> Sequence[Address]:
        """Temporarily opted-out addresses whose date has passed."""
        stmt = (
            select(Address)
            .where(Address.status == OPTED_OUT, Address.opted_out_until.is_not(None), Address.opted_out_until <= now)
            .order_by(Address.id)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def suppression(self, account_id: int, email_hash: str) -> Suppression | None:
        """The erased-address suppression with this keyed hash, or None."""
        stmt = select(Suppression).where(Suppression.account_id == account_id, Suppression.email_hash == email_hash)
        return self.session.scalars(stmt).first()

    def touch(self, address_id: int, now: datetime) -> None:
        """Bump an address's updated_at."""
        self.session.execute(update(Address).where(Address.id == address_id).values(updated_at=now))

    def address_lists(self, address_id: int) -> list[tuple[int, str, str]]:
        """(list id, list name, subscription status) of every live list the address is on."""
        from herald.lists.models import MailingList, Subscription

        stmt = (
            select(MailingList.id, MailingList.name, Subscription.status)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(Subscription.address_id == address_id, MailingList.deleted_at.is_(None))
            .order_by(MailingList.id)
        )
        return [(int(i), str(n), str(s)) for i, n, s in self.session.execute(stmt)]

    def topics_query(self, account_id: int) -> Select[Any]:
        """Select of the account's topics, for paging."""
        return select(Topic).where(Topic.account_id == account_id)


# Hot read statements, built once (constructing them cost as much as running them).
@cache
def _address_state(by_email: bool) -> Executable:
    cols = (Address.id, Address.email, Address.status, Address.opted_out_until, Address.status_before_optout)
    key = Address.email if by_email else Address.id
    return select(*cols).where(Address.account_id == bindparam("account_id"), key == bindparam("key")).limit(1)


@cache
def _topic_flags(enabled_only: bool) -> Executable:
    left = select(TopicUnsubscribe.topic_id).where(
        TopicUnsubscribe.address_id == bindparam("address_id"), TopicUnsubscribe.topic_id == Topic.id
    )
    stmt = select(Topic.id, Topic.name, Topic.description, Topic.enabled, left.exists()).where(
        Topic.account_id == bindparam("account_id")
    )
    if enabled_only:
        stmt = stmt.where(Topic.enabled.is_(True))
    return stmt.order_by(Topic.id)
