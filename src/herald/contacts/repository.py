"""SQL for contacts, contact types and segments."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Select, String, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from herald.consent.models import Address, Suppression
from herald.consent.rules import UNKNOWN
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
        from herald.sends.models import Delivery  # deliveries have no foreign key to unlink them for us

        self.session.execute(update(Delivery).where(Delivery.contact_id == contact.id).values(contact_id=None))
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

    # -- bulk import ----------------------------------------------------------------------------
    def upsert_contacts(self, account_id: int, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> set[str]:
        """SQLite: insert contacts or, for an (account, email) that exists, update the given columns; answers
        new emails (PostgreSQL imports go through import_contacts).

        Set-based (no per-row statement). An empty value keeps what the contact had and custom fields merge,
        so an import never erases data. Rows must have distinct emails.
        """
        if not rows:
            return set()
        existing = set(
            self.session.scalars(
                select(Contact.email).where(
                    Contact.account_id == account_id, Contact.email.in_([r["email"] for r in rows])
                )
            )
        )
        stmt = sqlite_insert(Contact)
        table = Contact.__table__.c
        updates: dict[str, Any] = {name: func.coalesce(stmt.excluded[name], table[name]) for name in columns}
        updates["fields"] = func.json_patch(table.fields, stmt.excluded.fields)
        updates["updated_at"] = stmt.excluded.updated_at
        stmt = stmt.on_conflict_do_update(index_elements=[table.account_id, table.email], set_=updates)
        self.session.execute(stmt, list(rows))
        return {r["email"] for r in rows} - existing

    def is_postgresql(self) -> bool:
        """Whether this session talks to PostgreSQL (the import has a COPY path there)."""
        return self.session.get_bind().dialect.name == "postgresql"

    def defer_commit_flush(self) -> None:
        """PostgreSQL: this transaction's commit does not wait for the WAL flush (SQLite's WAL mode already
        syncs lazily). Any later synchronous commit flushes it, so it is durable once a later one is."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SET LOCAL synchronous_commit TO OFF"))

    def has_suppressions(self, account_id: int) -> bool:
        """Whether the account has any erased-address suppression (most have none: skip the hashing then)."""
        stmt = select(Suppression.id).where(Suppression.account_id == account_id).limit(1)
        return self.session.scalar(stmt) is not None

    def insert_addresses(self, account_id: int, emails: Collection[str], now: datetime) -> None:
        """Create `unknown` addresses for emails the account has never seen (one statement; existing kept)."""
        if not emails:
            return
        table = Address.__table__.c
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = pg_insert(Address).from_select(
                ["account_id", "email", "status", "created_at", "updated_at"],
                select(
                    literal(account_id),
                    func.unnest(literal(list(emails), ARRAY(String))),
                    literal(UNKNOWN),
                    literal(now, Address.__table__.c.created_at.type),
                    literal(now, Address.__table__.c.created_at.type),
                ),
            )
            self.session.execute(stmt.on_conflict_do_nothing(index_elements=[table.account_id, table.email]))
            return
        stmt2 = sqlite_insert(Address).on_conflict_do_nothing(index_elements=[table.account_id, table.email])
        rows = [
            {"account_id": account_id, "email": e, "status": UNKNOWN, "created_at": now, "updated_at": now}
            for e in emails
        ]
        self.session.execute(stmt2, rows)

    def suppressed_hashes(self, account_id: int, hashes: Collection[str]) -> set[str]:
        """Which of these keyed email hashes belong to erased, suppressed addresses of the account."""
        if not hashes:
            return set()
        # One array parameter on PostgreSQL rather than one bound parameter per hash of a large batch.
        wanted = (
            Suppression.email_hash == func.any(literal(list(hashes), ARRAY(String)))
            if self.is_postgresql()
            else Suppression.email_hash.in_(list(hashes))
        )
        stmt = select(Suppression.email_hash).where(Suppression.account_id == account_id, wanted)
        return set(self.session.scalars(stmt))
