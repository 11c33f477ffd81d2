"""SQL for contacts, contact types and segments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select
from sqlalchemy.orm import Session

from herald.contacts.models import Contact, ContactType, Segment


class ContactRepository:
    """Reads and writes contact rows, always scoped to one account."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: Contact | ContactType | Segment) -> None:
        """Stage a new row and give it its id."""
        self.session.add(obj)
        self.session.flush()

    # -- contacts -------------------------------------------------------------------------------
    def contact(self, account_id: int, contact_id: int) -> Contact | None:
        """A contact of the account, or None."""
        stmt = select(Contact).where(Contact.account_id == account_id, Contact.id == contact_id)
        return self.session.scalars(stmt).first()

    def contact_by_email(self, account_id: int, email: str) -> Contact | None:
        """The contact with this normalised email, or None."""
        stmt = select(Contact).where(Contact.account_id == account_id, Contact.email == email)
        return self.session.scalars(stmt).first()

    def contacts_query(self, account_id: int, *, email: str | None = None) -> Select[Any]:
        """Select of the account's contacts (optionally one email), for paging."""
        stmt = select(Contact).where(Contact.account_id == account_id)
        if email is not None:
            stmt = stmt.where(Contact.email == email)
        return stmt

    def contacts_where(self, account_id: int, condition: ColumnElement[bool]) -> Select[Any]:
        """Select of the account's contacts matching a compiled condition, for paging."""
        return select(Contact).where(Contact.account_id == account_id, condition)

    def delete_contact(self, contact: Contact) -> None:
        """Remove a contact row (its address and consent history stay)."""
        self.session.execute(delete(Contact).where(Contact.id == contact.id))

    # -- contact types --------------------------------------------------------------------------
    def contact_type(self, account_id: int, type_id: int) -> ContactType | None:
        """A contact type of the account, or None."""
        stmt = select(ContactType).where(ContactType.account_id == account_id, ContactType.id == type_id)
        return self.session.scalars(stmt).first()

    def contact_type_ids(self, account_id: int) -> set[int]:
        """Every contact type id of the account."""
        return set(self.session.scalars(select(ContactType.id).where(ContactType.account_id == account_id)))

    def contact_types_query(self, account_id: int) -> Select[Any]:
        """Select of the account's contact types, for paging."""
        return select(ContactType).where(ContactType.account_id == account_id)

    # -- segments -------------------------------------------------------------------------------
    def segment(self, account_id: int, segment_id: int) -> Segment | None:
        """A segment of the account, or None."""
        stmt = select(Segment).where(Segment.account_id == account_id, Segment.id == segment_id)
        return self.session.scalars(stmt).first()

    def segments_query(self, account_id: int) -> Select[Any]:
        """Select of the account's segments, for paging."""
        return select(Segment).where(Segment.account_id == account_id)
