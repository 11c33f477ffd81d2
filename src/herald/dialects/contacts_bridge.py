"""Creating a contact from a dialect (AllClients AddContact).

Uses herald.contacts.service when that service exists; until then a minimal repository-style fallback
makes the address known through the consent engine and inserts the Contact row. An existing contact of
the same email is answered as is (contacts are unique per account and email).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from sqlalchemy import select

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.contacts.models import Contact


def add_contact(svc: ConsentService, actor: Actor, email: str, data: dict[str, Any], extra: dict[str, str]) -> int:
    """The id of the contact with this email, created (with its address) when new."""
    service_cls = _contact_service()
    if service_cls is not None:
        return _through_service(service_cls, svc, actor, email, data, extra)
    addr = svc.ensure(email)
    existing = svc.session.scalars(
        select(Contact).where(Contact.account_id == actor.account_id, Contact.email == addr.email)
    ).first()
    if existing is not None:
        return existing.id
    contact = Contact(account_id=actor.account_id, email=addr.email, fields=extra, **data)
    svc.session.add(contact)
    svc.session.flush()
    return contact.id


def _contact_service() -> Any:
    try:
        module = import_module("herald.contacts.service")
    except ModuleNotFoundError:
        return None
    return getattr(module, "ContactService", None)


def _through_service(
    service_cls: Any, svc: ConsentService, actor: Actor, email: str, data: dict[str, Any], extra: dict[str, str]
) -> int:
    from herald.errors import Conflict

    contacts = service_cls(svc.session, actor)
    try:
        contact = contacts.create({"email": email, **data, "fields": extra})
    except Conflict:
        addr = svc.ensure(email)
        existing = svc.session.scalars(
            select(Contact).where(Contact.account_id == actor.account_id, Contact.email == addr.email)
        ).first()
        if existing is None:
            raise
        return existing.id
    return int(contact.id)
