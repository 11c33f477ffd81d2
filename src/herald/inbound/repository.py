"""SQL for inbound reports: finding the delivery a report is about, delivery events, stored messages."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from herald.consent.models import Address
from herald.inbound.models import InboundMessage
from herald.sends.models import Delivery, DeliveryEvent
from herald.sends.repository import SendRepository


class InboundRepository:
    """Reads deliveries and appends inbound messages and delivery events."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def delivery_by_token(self, token: str) -> Delivery | None:
        """The delivery with this token, or None."""
        return SendRepository(self.session).delivery_by_token(token)

    def delivery_by_message_id(self, message_id: str) -> Delivery | None:
        """The delivery sent with this Message-ID (stored with or without its angle brackets)."""
        bare = message_id.strip().strip("<>").strip()
        if not bare or len(bare) > 298:
            return None
        stmt = select(Delivery).where(Delivery.message_id.in_([bare, f"<{bare}>"])).order_by(Delivery.id.desc())
        return self.session.scalars(stmt.limit(1)).first()

    def latest_delivery_to(self, email: str) -> Delivery | None:
        """The most recently sent delivery to this (normalised) email, in any account."""
        stmt = (
            select(Delivery)
            .where(Delivery.email == email, Delivery.sent_at.is_not(None))
            .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def address(self, delivery: Delivery) -> Address | None:
        """The delivery's address (None once erased)."""
        if delivery.address_id is None:
            return None
        addr = self.session.get(Address, delivery.address_id)
        return addr if addr is not None and addr.account_id == delivery.account_id else None

    def has_event(self, delivery_id: int, kind: str) -> bool:
        """Whether this delivery already has an event of this kind."""
        stmt = select(DeliveryEvent.id).where(DeliveryEvent.delivery_id == delivery_id, DeliveryEvent.kind == kind)
        return self.session.scalars(stmt.limit(1)).first() is not None

    def add(self, row: InboundMessage | DeliveryEvent) -> None:
        """Stage a new row and give it its id."""
        self.session.add(row)
        self.session.flush()
