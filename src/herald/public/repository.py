"""SQL for the public pages: deliveries by token, a send's recorded links, delivery events."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from herald.accounts.models import Account
from herald.consent.models import Address
from herald.sends.models import Delivery, DeliveryEvent, SendLink, SingleSend
from herald.sends.repository import SendRepository


class PublicRepository:
    """Reads the rows a public link points at and appends delivery events."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def delivery_by_token(self, token: str) -> Delivery | None:
        """The delivery whose random token this is, or None."""
        return SendRepository(self.session).delivery_by_token(token)

    def send(self, send_id: int) -> SingleSend | None:
        """The single send of a delivery."""
        return self.session.get(SingleSend, send_id)

    def account(self, account_id: int) -> Account | None:
        """The account a delivery belongs to."""
        return self.session.get(Account, account_id)

    def address(self, account_id: int, address_id: int | None) -> Address | None:
        """The delivery's address within its account (None once erased)."""
        if address_id is None:
            return None
        addr = self.session.get(Address, address_id)
        return addr if addr is not None and addr.account_id == account_id else None

    def link(self, send_id: int, position: int) -> SendLink | None:
        """The link recorded at `position` in this send, or None."""
        stmt = select(SendLink).where(SendLink.send_id == send_id, SendLink.position == position)
        return self.session.scalars(stmt).first()

    def has_event(self, delivery_id: int, kind: str) -> bool:
        """Whether this delivery already has an event of this kind."""
        stmt = select(DeliveryEvent.id).where(DeliveryEvent.delivery_id == delivery_id, DeliveryEvent.kind == kind)
        return self.session.scalars(stmt.limit(1)).first() is not None

    def add_event(self, event: DeliveryEvent) -> None:
        """Append a delivery event."""
        self.session.add(event)
        self.session.flush()
