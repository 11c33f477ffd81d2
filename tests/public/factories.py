"""Rows a public link points at, made directly with the models: account, address, send, delivery, links."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from herald.accounts.models import Account
from herald.actor import Actor
from herald.consent.models import ConsentEvent, Topic
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from herald.delivery import tokens
from herald.security import new_hex
from herald.sends.models import Delivery, DeliveryEvent, SendLink, SingleSend


@dataclass
class Mailed:
    """One delivery of one send to one address, with helpers for its public links."""

    container: Container
    account_id: int
    send_id: int
    delivery_id: int
    address_id: int
    email: str
    token: str
    topic_id: int | None

    def url(self, purpose: str) -> str:
        """The public token of one purpose, as the pipeline puts it in the mail."""
        return tokens.make(self.container.signer, purpose, self.token)

    def status(self) -> str:
        """The address's stored status."""
        with self.container.transaction() as s:
            return ConsentService(s, Actor(self.account_id, "test")).get_by_id(self.address_id).status

    def events(self, kind: str | None = None) -> list[DeliveryEvent]:
        """This delivery's events (optionally of one kind)."""
        with self.container.transaction() as s:
            stmt = select(DeliveryEvent).where(DeliveryEvent.delivery_id == self.delivery_id)
            if kind:
                stmt = stmt.where(DeliveryEvent.kind == kind)
            rows = list(s.scalars(stmt.order_by(DeliveryEvent.id)))
            s.expunge_all()
            return rows

    def ledger(self) -> list[ConsentEvent]:
        """The address's consent ledger, oldest first."""
        with self.container.transaction() as s:
            stmt = select(ConsentEvent).where(ConsentEvent.address_id == self.address_id).order_by(ConsentEvent.id)
            rows = list(s.scalars(stmt))
            s.expunge_all()
            return rows

    def unsubscribed_topics(self) -> set[int]:
        """Topics the address left."""
        with self.container.transaction() as s:
            svc = ConsentService(s, Actor(self.account_id, "test"))
            return svc.unsubscribed_topic_ids(svc.get_by_id(self.address_id))


def make_topic(container: Container, account_id: int, name: str, *, enabled: bool = True, description: str = "") -> int:
    """A topic (unsubscribe group) of the account."""
    with container.transaction() as s:
        topic = Topic(account_id=account_id, name=name, enabled=enabled, description=description)
        s.add(topic)
        s.flush()
        return topic.id


def make_account_row(container: Container, name: str = "acme", *, branding: dict[str, Any] | None = None) -> int:
    """An account row with optional branding."""
    with container.transaction() as s:
        account = Account(name=name, branding=branding or {})
        s.add(account)
        s.flush()
        return account.id


def mail(
    container: Container,
    account_id: int,
    email: str = "ann@example.com",
    *,
    status: str | None = "opted_in",
    topic_id: int | None = None,
    links: tuple[str, ...] = (),
    message_id: str | None = None,
) -> Mailed:
    """An address in `status`, a send (with an optional topic and links) and one delivery to the address."""
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id, "test"), hash_key=container.hash_key)
        addr = svc.ensure(email)
        if status and status != addr.status:
            svc.transition(addr, status)
        send = SingleSend(
            account_id=account_id, utr=str(uuid.uuid4()), name="Spring news", subject="Hello", topic_id=topic_id
        )
        s.add(send)
        s.flush()
        for position, url in enumerate(links):
            s.add(SendLink(send_id=send.id, position=position, url=url))
        delivery = Delivery(
            account_id=account_id,
            send_id=send.id,
            address_id=addr.id,
            email=addr.email,
            token=new_hex(32),
            status="sent",
            sent_at=utcnow(),
            message_id=message_id,
        )
        s.add(delivery)
        s.flush()
        return Mailed(container, account_id, send.id, delivery.id, addr.id, addr.email, delivery.token, topic_id)
