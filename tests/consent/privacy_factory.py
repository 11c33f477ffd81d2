"""A person with a row in every table that can hold their data, and a scanner that looks for them anywhere."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from herald.actor import Actor
from herald.consent.models import Address
from herald.consent.service import ConsentService
from herald.contacts.models import Contact
from herald.container import Container
from herald.db.models import Base
from herald.inbound.models import InboundMessage
from herald.jobs import service as jobs
from herald.lists.models import MailingList, Subscription
from herald.optin.models import OptinRecord
from herald.sends.models import Delivery, DeliveryEvent, SingleSend
from herald.webhooks.models import Webhook

EMAIL = "zed.quux_9@example.com"
IP = "203.0.113.77"
USER_AGENT = "ZebBrowser/9.1"
CONTACT = {
    "first_name": "Zebulon",
    "last_name": "Quuxington",
    "alt_email": "zeb.alt@elsewhere.test",
    "city": "Frobozzville",
    "address_line1": "17 Grue Lane",
    "postal_code": "ZX-4242",
    "company_name": "Zorkmid Holdings",
}
CUSTOM_FIELDS = {"hobby": "left-handed yodelling", "pet": "Snargleblast"}


@dataclass
class Person:
    """Ids of the rows seeded for one person, and every value that identifies them."""

    account_id: int
    email: str
    address_id: int
    contact_id: int
    list_id: int
    subscription_id: int
    topic_id: int
    send_id: int
    delivery_id: int
    delivery_token: str
    needles: list[str] = field(default_factory=list)


def actor(account_id: int, source: str = "api", *, ip: str = IP, user_agent: str = USER_AGENT) -> Actor:
    """An actor that carries the person's IP and user agent, as the public pages would."""
    return Actor(account_id=account_id, source=source, ip=ip, user_agent=user_agent)


# A different person, for proving that erasure touches only the one erased.
BYSTANDER = {
    "email": "keep.me@example.com",
    "ip": "198.51.100.5",
    "user_agent": "KeeperAgent/1",
    "contact": {"first_name": "Keeper", "last_name": "Stays", "city": "Elsewhere"},
    "fields": {"hobby": "chess"},
}


def seed_person(
    container: Container,
    account_id: int,
    *,
    email: str = EMAIL,
    status: str | None = "spam_reported",
    ip: str = IP,
    user_agent: str = USER_AGENT,
    contact: dict[str, str] | None = None,
    fields: dict[str, str] | None = None,
) -> Person:
    """Create the person everywhere: contact, subscription + opt-in, topic, ledger, delivery, events, inbound."""
    values = CONTACT if contact is None else contact
    custom = CUSTOM_FIELDS if fields is None else fields
    with container.transaction() as s:
        s.add(Webhook(account_id=account_id, url="http://127.0.0.1:9/hook", events=["address.status_changed"]))
        s.flush()
        consent = ConsentService(s, actor(account_id, ip=ip, user_agent=user_agent), hash_key=container.hash_key)
        addr = consent.ensure(email)
        row = Contact(account_id=account_id, email=email, fields=dict(custom), **values)
        lst = MailingList(account_id=account_id, name="Weekly", double_opt_in=True)
        s.add_all([row, lst])
        s.flush()
        sub = Subscription(account_id=account_id, list_id=lst.id, address_id=addr.id, status="unconfirmed")
        s.add(sub)
        s.flush()
        consent.record_subscription(addr, lst.id, None, "unconfirmed", reason=f"form filled by {values['first_name']}")
        s.add(
            OptinRecord(
                account_id=account_id,
                subscription_id=sub.id,
                completed=True,
                detail=f"opt-in email sent to {email}",
                message_ref=f"<optin-1@{email.split('@')[1]}>",
            )
        )
        topic = consent.create_topic("Offers")
        consent.unsubscribe_topic(addr, topic.id, reason=f"{values['last_name']} said no more offers")
        send = SingleSend(account_id=account_id, utr=str(uuid.uuid4()), name="Spring sale", subject="Sale")
        s.add(send)
        s.flush()
        token = secrets.token_hex(16)
        delivery = Delivery(
            account_id=account_id,
            send_id=send.id,
            address_id=addr.id,
            contact_id=row.id,
            email=email,
            status="sent",
            token=token,
            message_id="<abc123@herald.test>",
            error=f"452 4.2.2 {email}: mailbox full (first try)",
        )
        s.add(delivery)
        s.flush()
        s.add_all(
            [
                DeliveryEvent(
                    account_id=account_id,
                    send_id=send.id,
                    delivery_id=delivery.id,
                    kind="open",
                    ip=ip,
                    user_agent=user_agent,
                ),
                DeliveryEvent(
                    account_id=account_id,
                    send_id=send.id,
                    delivery_id=delivery.id,
                    kind="complaint",
                    detail=f"Feedback-Type: abuse; Original-Rcpt-To: {email}",
                ),
                InboundMessage(
                    account_id=account_id,
                    delivery_id=delivery.id,
                    kind="arf",
                    outcome="complaint",
                    raw=f"From: fbl@isp.test\r\nOriginal-Rcpt-To: {email}\r\n\r\nabuse report",
                ),
                # A bounce nobody could match to an account, still naming the address.
                InboundMessage(kind="dsn", outcome="unmatched", raw=f"Final-Recipient: rfc822; {email}"),
            ]
        )
        if status is not None:
            consent.set_status(email, status, reason=f"complaint from {values['first_name']}")
        jobs.enqueue(s, "test.note", {"note": f"remember {email}"}, account_id=account_id)
        person = Person(
            account_id=account_id,
            email=email,
            address_id=addr.id,
            contact_id=row.id,
            list_id=lst.id,
            subscription_id=sub.id,
            topic_id=topic.id,
            send_id=send.id,
            delivery_id=delivery.id,
            delivery_token=token,
        )
    person.needles = [email, ip, user_agent, *values.values(), *custom.values()]
    return person


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | int | float | datetime):
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def scan(container: Container, needles: list[str]) -> list[str]:
    """`table.column = needle` for every cell of every table (Base.metadata) that contains a needle."""
    hits: list[str] = []
    lowered = [n.lower() for n in needles]
    with container.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    text = _text(value)
                    if text is None:
                        continue
                    hits += [f"{table.name}.{column} ~ {n}" for n in lowered if n in text.lower()]
    return hits


def address_status(container: Container, account_id: int, email: str) -> str | None:
    """The status of an address in an account, or None when there is no such row."""
    with container.transaction() as s:
        stmt = select(Address.status).where(Address.account_id == account_id, Address.email == email)
        return s.scalar(stmt)
