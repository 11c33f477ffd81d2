"""Inbound bounces, complaints and mailto unsubscribes: matched to their delivery, applied to consent.

A hard bounce marks the delivery and the address `bounced`; a soft bounce is recorded and changes nothing;
a complaint marks the address `spam_reported`. Every consent change goes through ConsentService with source
"inbound". Every message received is stored with what Herald made of it, matched or not. Replaying the
same report changes nothing twice.

Matching, most trusted first: an `X-Herald-Delivery: <token>` header in the original message, its
Message-ID (`<{delivery token}@domain>` by the pipeline, or the stored Message-ID), then the original
recipient's most recent delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent import rules
from herald.consent.service import ConsentService
from herald.db.base import utcnow
from herald.errors import NotFound
from herald.inbound import parse
from herald.inbound.models import InboundMessage
from herald.inbound.repository import InboundRepository
from herald.public.service import PublicService
from herald.security import TokenSigner
from herald.sends.models import Delivery, DeliveryEvent
from herald.webhooks.outbox import emit

log = logging.getLogger("herald.inbound")

UNMATCHED, IGNORED, UNSUBSCRIBE = "unmatched", "ignored", "unsubscribe"
MAILTO = "mailto"
# The local part of the List-Unsubscribe mailto address: unsubscribe+{delivery token}@domain.
MAILTO_PREFIX = "unsubscribe+"


class InboundService:
    """Applies one received message; the caller owns the transaction."""

    def __init__(self, session: Session, signer: TokenSigner, *, hash_key: bytes | None = None) -> None:
        self.session = session
        self.signer = signer
        self.hash_key = hash_key
        self.repo = InboundRepository(session)

    def receive(
        self, raw: bytes, *, envelope_recipients: Sequence[str] = (), match_by_recipient: bool = True
    ) -> InboundMessage:
        """Store and act on a raw message: a mailto unsubscribe, a DSN, an ARF report, or something else.

        `match_by_recipient` allows the last-resort match on the original recipient's address. The
        unauthenticated SMTP listener turns it off: anyone can write a DSN naming an address, but nobody can
        guess a delivery token or Herald's Message-ID.
        """
        for rcpt in envelope_recipients:
            token = _mailto_token(rcpt)
            if token is not None:
                return self._mailto_unsubscribe(token, raw)
        report = parse.parse_report(raw)
        delivery = self._match(report, by_recipient=match_by_recipient) if report.outcome else None
        if report.outcome is None:
            outcome = IGNORED
        elif delivery is None:
            outcome = UNMATCHED
        else:
            outcome = report.outcome
            self._apply(report, delivery)
        return self._store(raw, kind=report.kind, outcome=outcome, delivery=delivery)

    # -- matching --------------------------------------------------------------------------------
    def _match(self, report: parse.Report, *, by_recipient: bool) -> Delivery | None:
        for token in report.delivery_tokens:
            found = self.repo.delivery_by_token(token)
            if found is not None:
                return found
        for message_id in report.message_ids:
            local = message_id.strip().strip("<>").split("@", 1)[0]
            found = self.repo.delivery_by_token(local) or self.repo.delivery_by_message_id(message_id)
            if found is not None:
                return found
        for email in report.recipients if by_recipient else ():
            found = self.repo.latest_delivery_to(email)
            if found is not None:
                return found
        return None

    # -- acting ------------------------------------------------------------------------------------
    def _apply(self, report: parse.Report, delivery: Delivery) -> None:
        if report.outcome == parse.HARD_BOUNCE:
            self._hard_bounce(report, delivery)
        elif report.outcome == parse.SOFT_BOUNCE:
            detail = " ".join(p for p in (report.status, report.detail) if p) or None
            self._event(delivery, "soft_bounce", detail)
        elif report.outcome == parse.COMPLAINT:
            self._complaint(report, delivery)

    def _hard_bounce(self, report: parse.Report, delivery: Delivery) -> None:
        detail = " ".join(p for p in (report.status, report.detail) if p) or "hard bounce"
        delivery.status = "bounced"
        delivery.error = detail[:2000]
        first = not self.repo.has_event(delivery.id, "bounce")
        if first:
            self._event(delivery, "bounce", detail)
        self._transition(delivery, rules.BOUNCED, f"hard bounce: {detail}")
        if first:
            emit(
                self.session,
                delivery.account_id,
                "delivery.bounced",
                {
                    "email": delivery.email,
                    "send_id": delivery.send_id,
                    "delivery_id": delivery.id,
                    "status": report.status,
                },
            )

    def _complaint(self, report: parse.Report, delivery: Delivery) -> None:
        first = not self.repo.has_event(delivery.id, "complaint")
        if first:
            self._event(delivery, "complaint", report.detail)
        self._transition(delivery, rules.SPAM_REPORTED, f"complaint ({report.detail or 'abuse'})")
        if first:
            emit(
                self.session,
                delivery.account_id,
                "complaint",
                {"email": delivery.email, "send_id": delivery.send_id, "delivery_id": delivery.id},
            )

    def _transition(self, delivery: Delivery, status: str, reason: str) -> None:
        """Apply the consent change when the state machine allows it; a refusal (already worse) is no change."""
        addr = self.repo.address(delivery)
        if addr is None:
            return  # erased: its keyed-hash suppression already keeps it from being mailed
        svc = ConsentService(
            self.session, Actor(delivery.account_id, "inbound", is_admin=False), hash_key=self.hash_key
        )
        current = svc.effective_status(addr)
        if current == status or not rules.is_allowed(current, status):
            return
        svc.transition(addr, status, reason=reason, send_id=delivery.send_id)

    def _mailto_unsubscribe(self, token: str, raw: bytes) -> InboundMessage:
        public = PublicService(self.session, self.signer, hash_key=self.hash_key, source="inbound")
        try:
            recipient = public.recipient_by_delivery_token(token)
        except NotFound:
            return self._store(raw, kind=MAILTO, outcome=UNMATCHED, delivery=None)
        public.unsubscribe(recipient)
        return self._store(raw, kind=MAILTO, outcome=UNSUBSCRIBE, delivery=recipient.delivery)

    def _event(self, delivery: Delivery, kind: str, detail: str | None) -> None:
        self.repo.add(
            DeliveryEvent(
                account_id=delivery.account_id,
                send_id=delivery.send_id,
                delivery_id=delivery.id,
                kind=kind,
                at=utcnow(),
                detail=detail[:2000] if detail else None,
            )
        )

    def _store(self, raw: bytes, *, kind: str, outcome: str, delivery: Delivery | None) -> InboundMessage:
        # PostgreSQL text cannot hold NUL; a replacement character keeps the rest readable.
        text = raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        message = InboundMessage(
            account_id=delivery.account_id if delivery else None,
            delivery_id=delivery.id if delivery else None,
            kind=kind,
            outcome=outcome,
            raw=text,
        )
        self.repo.add(message)
        log.info("inbound %s message: %s (delivery %s)", kind, outcome, delivery.id if delivery else None)
        return message


def _mailto_token(rcpt: str) -> str | None:
    local = rcpt.strip().strip("<>").rsplit("@", 1)[0]
    if not local.lower().startswith(MAILTO_PREFIX):
        return None
    token = local[len(MAILTO_PREFIX) :]
    return token or None
