"""SQL the Sign-Up.to dialect needs beyond the services: nonces, and windows over filtered selects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from herald.accounts.models import UsedNonce
from herald.consent.models import Address
from herald.contacts.models import Contact
from herald.lists.models import Subscription
from herald.optin.models import OptinRecord


class SignuptoRepository:
    """Reads and writes for the Sign-Up.to edge."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def use_nonce(self, credential_id: int, nonce: str, now: datetime, *, forget_before: datetime) -> bool:
        """Record a nonce for a credential; False when it was used before (a replayed request)."""
        self.session.execute(
            delete(UsedNonce).where(UsedNonce.credential_id == credential_id, UsedNonce.seen_at < forget_before)
        )
        try:
            with self.session.begin_nested():
                self.session.add(UsedNonce(credential_id=credential_id, nonce=nonce, seen_at=now))
                self.session.flush()
        except IntegrityError:
            return False
        return True

    def window(
        self, stmt: Select[*tuple[Any, ...]], order: Sequence[Any], *, start: int, count: int
    ) -> tuple[Sequence[Any], int]:
        """Rows `start`..`start+count` of an ordered select, and how many it matches in all."""
        total = int(self.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
        rows = self.session.execute(stmt.order_by(*order).offset(start).limit(count)).all()
        return [row[0] if len(row) == 1 else tuple(row) for row in rows], total

    def subscriptions_query(self, account_id: int) -> Select[Subscription, str, int]:
        """Subscriptions of the account with their email and the contact id of that email (or None)."""
        return (
            select(Subscription, Address.email, Contact.id)
            .join(Address, Address.id == Subscription.address_id)
            .outerjoin(Contact, (Contact.account_id == Subscription.account_id) & (Contact.email == Address.email))
            .where(Subscription.account_id == account_id)
        )

    def records_query(self, account_id: int) -> Select[OptinRecord, int, int]:
        """Opt-in records of the account with their subscription's list, email and contact id."""
        return (
            select(OptinRecord, Subscription.list_id, Contact.id)
            .join(Subscription, Subscription.id == OptinRecord.subscription_id)
            .join(Address, Address.id == Subscription.address_id)
            .outerjoin(Contact, (Contact.account_id == Subscription.account_id) & (Contact.email == Address.email))
            .where(OptinRecord.account_id == account_id)
        )

    def latest_record(self, subscription_id: int) -> OptinRecord | None:
        """The newest opt-in record of a subscription."""
        stmt = (
            select(OptinRecord)
            .where(OptinRecord.subscription_id == subscription_id)
            .order_by(OptinRecord.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def email_of_address(self, address_id: int) -> str | None:
        """The email of an address row."""
        return self.session.scalar(select(Address.email).where(Address.id == address_id))

    def contact_id_for(self, account_id: int, email: str) -> int | None:
        """The id of the account's contact with this email, or None."""
        return self.session.scalar(select(Contact.id).where(Contact.account_id == account_id, Contact.email == email))
