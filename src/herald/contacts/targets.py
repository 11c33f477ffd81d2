"""Recipient specs ("contacts_3" = every contact of type 3, "segments_1" = segment 1) as SQL over contacts."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from herald.contacts.models import Contact
from herald.contacts.repository import ContactRepository
from herald.contacts.segments import compile_rules
from herald.errors import Invalid, NotFound

CONTACT_TYPE_TARGET = "contacts_"
SEGMENT_TARGET = "segments_"
_TARGET = re.compile(r"(contacts_|segments_)([1-9][0-9]{0,17})")


def parse_target(value: str) -> tuple[str, int]:
    """Split a recipient spec into its table ("contacts_" or "segments_") and id; Invalid otherwise."""
    match = _TARGET.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise Invalid("recipient_id", "must be contacts_<contact type id> or segments_<segment id>")
    return match.group(1), int(match.group(2))


def target_condition(session: Session, account_id: int, table: str, ident: int) -> ColumnElement[bool]:
    """WHERE clause over `Contact` selecting a recipient spec's contacts within the account."""
    repo = ContactRepository(session)
    if table == CONTACT_TYPE_TARGET:
        if repo.contact_type(account_id, ident) is None:
            raise NotFound("contact type", ident)
        return and_(Contact.account_id == account_id, Contact.contact_type_id == ident)
    if table == SEGMENT_TARGET:
        segment = repo.segment(account_id, ident)
        if segment is None:
            raise NotFound("segment", ident)
        return and_(Contact.account_id == account_id, compile_rules(segment.rules))
    raise Invalid("recipient_id", f"unknown recipient table {table!r}")
