"""SQL for categories, lists and list subscriptions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, false, select, update
from sqlalchemy.orm import Session

from herald.consent.models import Address
from herald.lists.models import Category, MailingList, Subscription


class ListRepository:
    """Reads and writes list rows, always scoped to one account."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: Category | MailingList | Subscription) -> None:
        """Stage a new row and give it its id."""
        self.session.add(obj)
        self.session.flush()

    # -- categories -----------------------------------------------------------------------------
    def category(self, account_id: int, category_id: int) -> Category | None:
        """A live category of the account, or None."""
        if not _plausible_id(category_id):
            return None
        row = self.session.get(Category, category_id)
        if row is None or row.account_id != account_id or row.deleted_at is not None:
            return None
        return row

    def categories_query(self, account_id: int) -> Select[Any]:
        """Select of the account's live categories, for paging."""
        return select(Category).where(Category.account_id == account_id, Category.deleted_at.is_(None))

    # -- lists ----------------------------------------------------------------------------------
    def mailing_list(self, account_id: int, list_id: int) -> MailingList | None:
        """A live list of the account, or None."""
        if not _plausible_id(list_id):
            return None
        row = self.session.get(MailingList, list_id)
        if row is None or row.account_id != account_id or row.deleted_at is not None:
            return None
        return row

    def lists_query(self, account_id: int, *, category_id: int | None = None) -> Select[Any]:
        """Select of the account's live lists, for paging."""
        stmt = select(MailingList).where(MailingList.account_id == account_id, MailingList.deleted_at.is_(None))
        if category_id is not None:
            stmt = stmt.where(MailingList.category_id == category_id if _plausible_id(category_id) else false())
        return stmt

    # -- subscriptions --------------------------------------------------------------------------
    def subscription(self, list_id: int, address_id: int) -> Subscription | None:
        """The subscription of an address to a list, or None."""
        stmt = select(Subscription).where(Subscription.list_id == list_id, Subscription.address_id == address_id)
        return self.session.scalars(stmt).first()

    def subscription_by_id(self, account_id: int, subscription_id: int) -> Subscription | None:
        """A subscription of the account, or None."""
        if not _plausible_id(subscription_id):
            return None
        row = self.session.get(Subscription, subscription_id)
        return row if row is not None and row.account_id == account_id else None

    def lock_subscription(self, sub: Subscription) -> Subscription:
        """Re-read a subscription with a row lock (PostgreSQL), so concurrent changes serialise."""
        stmt = select(Subscription).where(Subscription.id == sub.id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one()

    def subscriptions_with_email(
        self, list_id: int, *, status: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[tuple[Subscription, str]]:
        """A keyset page of a list's subscriptions with each address's email, by subscription id."""
        stmt = (
            select(Subscription, Address.email)
            .join(Address, Address.id == Subscription.address_id)
            .where(Subscription.list_id == list_id, Subscription.id > after_id)
            .order_by(Subscription.id)
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(Subscription.status == status)
        return [(sub, str(email)) for sub, email in self.session.execute(stmt)]

    def subscribed_rows(self, list_id: int) -> Sequence[tuple[Subscription, Address]]:
        """Every subscription of a list that is not unsubscribed yet, with its address."""
        stmt = (
            select(Subscription, Address)
            .join(Address, Address.id == Subscription.address_id)
            .where(Subscription.list_id == list_id, Subscription.status != "unsubscribed")
            .order_by(Subscription.id)
        )
        return [(sub, addr) for sub, addr in self.session.execute(stmt)]

    def unsubscribe_ids(self, ids: Sequence[int], now: datetime) -> None:
        """Mark these subscriptions unsubscribed in one statement per chunk."""
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            self.session.execute(
                update(Subscription)
                .where(Subscription.id.in_(chunk))
                .values(status="unsubscribed", updated_at=now)
                .execution_options(synchronize_session="fetch")
            )


MAX_ID = 2**31 - 1


def _plausible_id(value: int) -> bool:
    """Ids outside the integer column's range name nothing (and would overflow the driver)."""
    return 0 < value <= MAX_ID
