"""SQL for opt-in rules and opt-in records (and the few reads of lists, messages and grants they check)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from herald.accounts.models import Account, User, UserCategoryGrant
from herald.contacts.models import Contact
from herald.lists.models import MailingList, Subscription
from herald.optin.models import OptinRecord, OptinRule
from herald.templates.models import Message, Sender


class OptinRepository:
    """Reads and writes optin_rules and optin_records, always scoped to one account."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: OptinRule | OptinRecord) -> None:
        """Stage a new row and give it its id."""
        self.session.add(obj)
        self.session.flush()

    def delete(self, obj: OptinRule) -> None:
        """Remove a rule."""
        self.session.delete(obj)
        self.session.flush()

    # -- rules ----------------------------------------------------------------------------------
    def rule(self, account_id: int, rule_id: int) -> OptinRule | None:
        """A rule of the account, or None."""
        row = self.session.get(OptinRule, rule_id)
        return row if row is not None and row.account_id == account_id else None

    def rule_for_list(self, account_id: int, list_id: int) -> OptinRule | None:
        """The account's rule for one list, or None."""
        stmt = select(OptinRule).where(OptinRule.account_id == account_id, OptinRule.list_id == list_id)
        return self.session.scalars(stmt).first()

    def catch_all(self, account_id: int) -> OptinRule | None:
        """The account's catch-all rule (list_id null), or None."""
        stmt = select(OptinRule).where(OptinRule.account_id == account_id, OptinRule.catch_all_key == "*")
        return self.session.scalars(stmt).first()

    def rules_query(self, account_id: int) -> Select[Any]:
        """Select of the account's rules, for filtering and paging."""
        return select(OptinRule).where(OptinRule.account_id == account_id)

    def run(self, stmt: Select[Any]) -> Sequence[Any]:
        """Run a select of whole rows."""
        return self.session.scalars(stmt).all()

    def count(self, stmt: Select[Any]) -> int:
        """How many rows a select matches."""
        return int(self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)

    # -- what rules point at ----------------------------------------------------------------------
    def account(self, account_id: int) -> Account | None:
        """The account."""
        return self.session.get(Account, account_id)

    def user(self, account_id: int, user_id: int) -> User | None:
        """A user of the account, or None."""
        row = self.session.get(User, user_id)
        return row if row is not None and row.account_id == account_id else None

    def message(self, account_id: int, message_id: int) -> Message | None:
        """A message of the account, deleted ones included (a rule still sends a deleted message)."""
        row = self.session.get(Message, message_id)
        return row if row is not None and row.account_id == account_id else None

    def sender(self, account_id: int, sender_id: int) -> Sender | None:
        """A sender of the account, or None."""
        row = self.session.get(Sender, sender_id)
        return row if row is not None and row.account_id == account_id else None

    def contact(self, account_id: int, email: str) -> Contact | None:
        """The contact with this (normalised) email, or None."""
        stmt = select(Contact).where(Contact.account_id == account_id, Contact.email == email)
        return self.session.scalars(stmt).first()

    def any_list(self, account_id: int, list_id: int) -> MailingList | None:
        """A list of the account, deleted ones included."""
        row = self.session.get(MailingList, list_id)
        return row if row is not None and row.account_id == account_id else None

    def granted_category_ids(self, user_id: int) -> set[int]:
        """Categories a user may use under folder restrictions."""
        stmt = select(UserCategoryGrant.category_id).where(UserCategoryGrant.user_id == user_id)
        return set(self.session.scalars(stmt))

    # -- records --------------------------------------------------------------------------------
    def record(self, account_id: int, record_id: int) -> OptinRecord | None:
        """An opt-in record of the account, or None."""
        row = self.session.get(OptinRecord, record_id)
        return row if row is not None and row.account_id == account_id else None

    def record_by_id(self, record_id: int) -> OptinRecord | None:
        """An opt-in record by id alone (public confirmation links carry only a signed id)."""
        return self.session.get(OptinRecord, record_id)

    def records_query(self, account_id: int) -> Select[Any]:
        """Select of the account's opt-in records, for filtering and paging."""
        return select(OptinRecord).where(OptinRecord.account_id == account_id)

    def emails_since(self, subscription_id: int, since: datetime) -> int:
        """How many opt-in emails (records not refused before sending) a subscription got since a moment."""
        stmt = select(func.count(OptinRecord.id)).where(
            OptinRecord.subscription_id == subscription_id,
            OptinRecord.created_at >= since,
            OptinRecord.errortype.is_distinct_from("Blacklisted"),
            OptinRecord.errortype.is_distinct_from("Hard bounce"),
        )
        return int(self.session.scalar(stmt) or 0)

    def oldest_since(self, subscription_id: int, since: datetime) -> datetime | None:
        """When the oldest record of the window was made (to say when the rate limit frees up)."""
        stmt = select(func.min(OptinRecord.created_at)).where(
            OptinRecord.subscription_id == subscription_id, OptinRecord.created_at >= since
        )
        return self.session.scalar(stmt)

    def lock_subscription(self, subscription_id: int) -> Subscription | None:
        """Re-read a subscription with a row lock, so concurrent opt-in requests count one after another."""
        stmt = select(Subscription).where(Subscription.id == subscription_id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).first()

    def subscription(self, subscription_id: int) -> Subscription | None:
        """A subscription by id."""
        return self.session.get(Subscription, subscription_id)

    def mark_confirmed(self, subscription_id: int, at: datetime) -> None:
        """Mark every open record of a subscription confirmed: one click confirms the subscription."""
        self.session.execute(
            update(OptinRecord)
            .where(OptinRecord.subscription_id == subscription_id, OptinRecord.confirmed.is_(False))
            .values(confirmed=True, confirmed_at=at)
            .execution_options(synchronize_session="fetch")
        )
