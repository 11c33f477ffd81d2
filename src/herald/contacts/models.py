"""Contact, ContactType and Segment tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from herald.db.base import Base, JSONType, index_where_set, utcnow

# The contact fields of the AllsTechnology "Get Dynamic Content" list that are stored on the contact
# (full_name, sender_name, sender_address and unsubscribe_preferences are derived at render time).
CONTACT_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "alt_email",
    "country",
    "state",
    "city",
    "address_line1",
    "address_line2",
    "state_province_region",
    "postal_code",
    "father_name",
    "designation",
    "age",
    "company_name",
    "birth_date",
    "join_date",
)


class ContactType(Base):
    """A kind of contact; AllsTechnology targets `contacts_{type}` address every contact of one type."""

    __tablename__ = "contact_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Base):
    """A person's profile; consent lives on the Address with the same email, not here."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("account_id", "email"),
        # Looked up only by a given type (contacts_{type} targets, the SET NULL when a type is deleted).
        index_where_set("ix_contacts_contact_type_id", "contact_type_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique (account_id, email) index serves account_id lookups too.
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    contact_type_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_types.id", ondelete="SET NULL"), default=None
    )
    first_name: Mapped[str | None] = mapped_column(String(200), default=None)
    last_name: Mapped[str | None] = mapped_column(String(200), default=None)
    alt_email: Mapped[str | None] = mapped_column(String(320), default=None)
    country: Mapped[str | None] = mapped_column(String(100), default=None)
    state: Mapped[str | None] = mapped_column(String(100), default=None)
    city: Mapped[str | None] = mapped_column(String(100), default=None)
    address_line1: Mapped[str | None] = mapped_column(String(300), default=None)
    address_line2: Mapped[str | None] = mapped_column(String(300), default=None)
    state_province_region: Mapped[str | None] = mapped_column(String(100), default=None)
    postal_code: Mapped[str | None] = mapped_column(String(30), default=None)
    father_name: Mapped[str | None] = mapped_column(String(200), default=None)
    designation: Mapped[str | None] = mapped_column(String(200), default=None)
    age: Mapped[int | None] = mapped_column(default=None)
    company_name: Mapped[str | None] = mapped_column(String(200), default=None)
    birth_date: Mapped[str | None] = mapped_column(String(10), default=None)
    join_date: Mapped[str | None] = mapped_column(String(10), default=None)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Segment(Base):
    """A saved rule over contact fields (CONTRACT.md's DSL), compiled to one SQL query when used."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    rules: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
