"""Contacts, contact types and segments for one actor: tenancy, field rules, known addresses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.contacts.models import CONTACT_FIELDS, Contact, ContactType, Segment
from herald.contacts.repository import ContactRepository
from herald.contacts.segments import compile_rules, validate_rules
from herald.contacts.validation import clean_custom_fields, clean_email, clean_profile
from herald.db.base import utcnow
from herald.errors import Conflict, Invalid, NotFound


class ContactService:
    """Business rules of contacts; creating a contact makes its email a known address of the account."""

    def __init__(self, session: Session, actor: Actor, *, hash_key: bytes | None = None) -> None:
        self.session = session
        self.actor = actor
        self.repo = ContactRepository(session)
        self._hash_key = hash_key

    # -- contacts -------------------------------------------------------------------------------
    def get(self, contact_id: int) -> Contact:
        """A contact of the actor's account, or NotFound."""
        contact = self.repo.contact(self.actor.account_id, contact_id)
        if contact is None:
            raise NotFound("contact", contact_id)
        return contact

    def find_by_email(self, email: str) -> Contact | None:
        """The contact with this email (normalised), or None."""
        return self.repo.contact_by_email(self.actor.account_id, clean_email(email))

    def query(self, *, email: str | None = None) -> Select[Any]:
        """Select of the account's contacts, optionally the one with an email, for paging."""
        return self.repo.contacts_query(self.actor.account_id, email=None if email is None else clean_email(email))

    def create(self, email: str, values: Mapping[str, Any]) -> Contact:
        """A new contact; Conflict('email') when the account already has one with this email."""
        normalised = clean_email(email)
        data = self._clean(values)
        if self.repo.contact_by_email(self.actor.account_id, normalised) is not None:
            raise Conflict(f"a contact with email {normalised} already exists", field="email")
        contact = Contact(account_id=self.actor.account_id, email=normalised, **data)
        contact.fields = {k: v for k, v in (data.get("fields") or {}).items() if v is not None}
        self._add(contact)
        ConsentService(self.session, self.actor, hash_key=self._hash_key).ensure(normalised)
        return contact

    def update(self, contact_id: int, values: Mapping[str, Any]) -> Contact:
        """Change the given fields; a new email must be free and becomes a known address."""
        contact = self.get(contact_id)
        values = dict(values)
        email = values.pop("email", None)
        data = self._clean(values)
        if "fields" in data:
            # Custom fields merge: a null value removes that key.
            merged = {**(contact.fields or {}), **data.pop("fields")}
            contact.fields = {k: v for k, v in merged.items() if v is not None}
        for name, value in data.items():
            setattr(contact, name, value)
        if email is not None:
            normalised = clean_email(email)
            if normalised != contact.email:
                if self.repo.contact_by_email(self.actor.account_id, normalised) is not None:
                    raise Conflict(f"a contact with email {normalised} already exists", field="email")
                contact.email = normalised
                ConsentService(self.session, self.actor, hash_key=self._hash_key).ensure(normalised)
        contact.updated_at = utcnow()
        self._flush()
        return contact

    def delete(self, contact_id: int) -> None:
        """Remove a contact; its address and consent ledger stay (they are the proof of consent)."""
        self.repo.delete_contact(self.get(contact_id))

    def _clean(self, values: Mapping[str, Any]) -> dict[str, Any]:
        profile = {k: v for k, v in values.items() if k in CONTACT_FIELDS}
        unknown = set(values) - set(profile) - {"contact_type_id", "fields"}
        if unknown:
            raise Invalid(sorted(unknown)[0], "is not a contact field; put custom data in fields")
        data = clean_profile(profile)
        if "contact_type_id" in values:
            data["contact_type_id"] = self._contact_type_id(values["contact_type_id"])
        if values.get("fields") is not None:
            data["fields"] = clean_custom_fields(values["fields"])
        return data

    def _contact_type_id(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid("contact_type_id", "must be an integer")
        if self.repo.contact_type(self.actor.account_id, value) is None:
            raise Invalid("contact_type_id", f"no contact type {value} in this account")
        return value

    def _add(self, contact: Contact) -> None:
        try:
            with self.session.begin_nested():
                self.repo.add(contact)
        except IntegrityError:
            # A concurrent request created the same email between our check and our insert.
            raise Conflict(f"a contact with email {contact.email} already exists", field="email") from None

    def _flush(self) -> None:
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise Conflict("a contact with this email already exists", field="email") from None

    # -- contact types --------------------------------------------------------------------------
    def create_type(self, name: str) -> ContactType:
        """A new contact type (the `contacts_{id}` recipient of AllsTechnology sends)."""
        name = name.strip()
        if not name:
            raise Invalid("name", "must not be empty")
        ctype = ContactType(account_id=self.actor.account_id, name=name)
        self.repo.add(ctype)
        return ctype

    def types_query(self) -> Select[Any]:
        """Select of the account's contact types, for paging."""
        return self.repo.contact_types_query(self.actor.account_id)

    # -- segments -------------------------------------------------------------------------------
    def create_segment(self, name: str, rules: dict[str, Any]) -> Segment:
        """A new segment; its rules are validated now so a send never meets a broken one."""
        name = name.strip()
        if not name:
            raise Invalid("name", "must not be empty")
        validate_rules(rules)
        segment = Segment(account_id=self.actor.account_id, name=name, rules=rules)
        self.repo.add(segment)
        return segment

    def segment(self, segment_id: int) -> Segment:
        """A segment of the actor's account, or NotFound."""
        segment = self.repo.segment(self.actor.account_id, segment_id)
        if segment is None:
            raise NotFound("segment", segment_id)
        return segment

    def segments_query(self) -> Select[Any]:
        """Select of the account's segments, for paging."""
        return self.repo.segments_query(self.actor.account_id)

    def segment_contacts_query(self, segment_id: int) -> Select[Any]:
        """Select of the contacts a segment matches right now (one SQL query), for paging."""
        segment = self.segment(segment_id)
        return self.repo.contacts_where(self.actor.account_id, compile_rules(segment.rules))
