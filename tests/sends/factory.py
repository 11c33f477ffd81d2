"""Factories for send tests: contact types, segments, contacts with their addresses, senders, topics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent.models import Address, Topic, TopicUnsubscribe
from herald.contacts.models import Contact, ContactType, Segment
from herald.sends.models import SingleSend
from herald.sends.schemas import SendIn
from herald.templates.models import Sender


@dataclass
class World:
    """Ids of what one account's sends can refer to."""

    account_id: int
    type_id: int
    other_type_id: int
    sender_id: int
    topic_id: int
    segment_id: int = 0
    emails: dict[str, int] = field(default_factory=dict)


def actor(account_id: int, *, user_id: int | None = None) -> Actor:
    """An actor acting through account-level keys (no user) unless told otherwise."""
    return Actor(account_id=account_id, source="test", user_id=user_id)


def add_contact(
    session: Session,
    account_id: int,
    email: str,
    *,
    type_id: int | None,
    status: str = "unknown",
    country: str | None = None,
    address: bool = True,
) -> Contact:
    """A contact and (by default) its address in a given consent state."""
    contact = Contact(account_id=account_id, email=email, contact_type_id=type_id, country=country, fields={})
    session.add(contact)
    if address:
        session.add(Address(account_id=account_id, email=email, status=status))
    session.flush()
    return contact


def address_id(session: Session, account_id: int, email: str) -> int:
    """The id of an address by email."""
    addr = session.query(Address).filter_by(account_id=account_id, email=email).one()
    return addr.id


def unsubscribe_topic(session: Session, account_id: int, email: str, topic_id: int) -> None:
    """Leave one unsubscribe group."""
    session.add(TopicUnsubscribe(address_id=address_id(session, account_id, email), topic_id=topic_id))
    session.flush()


def world(session: Session, account_id: int) -> World:
    """Two contact types, a sender, a topic and a segment (country DE) in the account."""
    t1, t2 = ContactType(account_id=account_id, name="customers"), ContactType(account_id=account_id, name="leads")
    sender = Sender(account_id=account_id, from_email="news@acme.test", from_name="Acme", address="1 Main St")
    topic = Topic(account_id=account_id, name="Newsletter", description="", enabled=True)
    session.add_all([t1, t2, sender, topic])
    session.flush()
    seg = Segment(
        account_id=account_id, name="Germans", rules={"all": [{"field": "country", "op": "eq", "value": "DE"}]}
    )
    session.add(seg)
    session.flush()
    return World(account_id, t1.id, t2.id, sender.id, topic.id, seg.id)


def send_in(w: World, **overrides: Any) -> SendIn:
    """A valid create body for the world's account."""
    body: dict[str, Any] = {
        "single_send_name": "Birthday Invite",
        "subject": "Hello ((first_name|there))",
        "preheader": "The party held on",
        "sender_id": w.sender_id,
        "template_id": 2,
        "unsubscribe_group_id": w.topic_id,
        "recipient_id": [f"contacts_{w.type_id}"],
    }
    body.update(overrides)
    return SendIn(**body)


def sender_and_send(session: Session, account_id: int, **fields: Any) -> SingleSend:
    """A sender ("Shop", news@shop.example) and a send from it, written directly (for pipeline and fault tests)."""
    sender = Sender(account_id=account_id, from_email="news@shop.example", from_name="Shop", address="1 Main St")
    session.add(sender)
    session.flush()
    send = SingleSend(account_id=account_id, utr=str(uuid.uuid4()), sender_id=sender.id, **fields)
    session.add(send)
    session.flush()
    return send
