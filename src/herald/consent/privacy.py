"""Data export and erasure of one address (GDPR articles 15 and 17), and the retention purge.

Erasure removes every personal field Herald holds about an address but keeps two things: the ledger's
anonymised skeleton (what changed, when, through which source) and, for an address that had opted out,
bounced or reported spam, a keyed hash of the normalised email with that state. ConsentService.ensure()
finds the hash whenever the address turns up again, so an erased address is never mailed again.

The Address row itself is deleted (ledger rows keep address_id NULL): no tombstone carries the email.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent import rules
from herald.consent.addresses import normalise_email
from herald.consent.models import Address, ConsentEvent
from herald.consent.privacy_repository import PrivacyRepository
from herald.consent.repository import ConsentRepository
from herald.consent.service import ConsentService, email_hash
from herald.contacts.models import CONTACT_FIELDS, Contact
from herald.db.base import utcnow
from herald.errors import NotFound

EXPORT_FORMAT = "herald.address-export/1"


@dataclass(frozen=True)
class Erasure:
    """What an erasure did; `suppressed` is the state kept as a keyed hash (None: nothing kept)."""

    email: str
    suppressed: str | None
    contact_removed: bool
    deliveries_scrubbed: int
    ledger_events_anonymised: int


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class PrivacyService:
    """Export and erasure for one actor's account."""

    def __init__(self, session: Session, actor: Actor, *, hash_key: bytes) -> None:
        self.session = session
        self.actor = actor
        self.hash_key = hash_key
        self.repo = PrivacyRepository(session)

    # -- export ---------------------------------------------------------------------------------
    def export(self, email: str) -> dict[str, Any]:
        """Everything held about an address as one JSON-ready document; NotFound if the account never saw it."""
        normalised = normalise_email(email)
        addr = self.repo.address(self.actor.account_id, normalised)
        contact = self.repo.contact(self.actor.account_id, normalised)
        if addr is None and contact is None:
            raise NotFound("address", normalised)
        return self._document(normalised, addr, contact)

    def export_address(self, address_id: int) -> dict[str, Any]:
        """The export of the address with this id (for the confirmed link of the preferences page)."""
        addr = self.repo.address_by_id(self.actor.account_id, address_id)
        if addr is None:
            raise NotFound("address")
        return self._document(addr.email, addr, self.repo.contact(self.actor.account_id, addr.email))

    def _document(self, email: str, addr: Address | None, contact: Contact | None) -> dict[str, Any]:
        account_id = self.actor.account_id
        subscriptions = self.repo.subscriptions(addr.id) if addr else []
        delivery_rows = self.repo.deliveries(account_id, addr.id if addr else None, email)
        delivery_ids = [d.id for d, _ in delivery_rows]
        events_by_delivery: dict[int, list[dict[str, Any]]] = {}
        for ev in self.repo.delivery_events(delivery_ids):
            events_by_delivery.setdefault(ev.delivery_id, []).append(
                {
                    "id": ev.id,
                    "kind": ev.kind,
                    "at": _iso(ev.at),
                    "link_id": ev.link_id,
                    "detail": ev.detail,
                    "ip": ev.ip,
                    "user_agent": ev.user_agent,
                }
            )
        return {
            "format": EXPORT_FORMAT,
            "exported_at": _iso(utcnow()),
            "email": email,
            "address": self._address(addr),
            "contact": self._contact(contact),
            "subscriptions": [
                {
                    "id": sub.id,
                    "list_id": sub.list_id,
                    "list_name": name,
                    "status": sub.status,
                    "created_at": _iso(sub.created_at),
                    "updated_at": _iso(sub.updated_at),
                }
                for sub, name in subscriptions
            ],
            "optin_records": [
                {
                    "id": rec.id,
                    "subscription_id": rec.subscription_id,
                    "message_id": rec.message_id,
                    "completed": rec.completed,
                    "confirmed": rec.confirmed,
                    "error": rec.error,
                    "errortype": rec.errortype,
                    "detail": rec.detail,
                    "created_at": _iso(rec.created_at),
                    "sent_at": _iso(rec.sent_at),
                    "confirmed_at": _iso(rec.confirmed_at),
                }
                for rec in self.repo.optin_records([sub.id for sub, _ in subscriptions])
            ],
            "topic_unsubscribes": [
                {"topic_id": row.topic_id, "topic_name": name, "at": _iso(row.at)}
                for row, name in (self.repo.topic_unsubscribes(addr.id) if addr else [])
            ],
            "consent_events": [self._event(e) for e in (self.repo.whole_ledger(addr.id) if addr else [])],
            "deliveries": [
                {
                    "id": d.id,
                    "send_id": d.send_id,
                    "send_name": send.name,
                    "subject": send.subject,
                    "email": d.email,
                    "status": d.status,
                    "attempts": d.attempts,
                    "message_id": d.message_id,
                    "sent_at": _iso(d.sent_at),
                    "error": d.error,
                    "events": events_by_delivery.get(d.id, []),
                }
                for d, send in delivery_rows
            ],
            "inbound_messages": [
                {
                    "id": m.id,
                    "delivery_id": m.delivery_id,
                    "kind": m.kind,
                    "outcome": m.outcome,
                    "received_at": _iso(m.received_at),
                    "raw": m.raw,
                }
                for m in self.repo.inbound_messages(delivery_ids)
            ],
        }

    @staticmethod
    def _address(addr: Address | None) -> dict[str, Any] | None:
        if addr is None:
            return None
        return {
            "id": addr.id,
            "email": addr.email,
            "status": addr.status,
            "opted_out_until": _iso(addr.opted_out_until),
            "status_before_optout": addr.status_before_optout,
            "created_at": _iso(addr.created_at),
            "updated_at": _iso(addr.updated_at),
        }

    @staticmethod
    def _contact(contact: Contact | None) -> dict[str, Any] | None:
        if contact is None:
            return None
        data: dict[str, Any] = {"id": contact.id, "email": contact.email, "contact_type_id": contact.contact_type_id}
        data.update({name: getattr(contact, name) for name in CONTACT_FIELDS})
        data["fields"] = dict(contact.fields or {})
        data["created_at"] = _iso(contact.created_at)
        data["updated_at"] = _iso(contact.updated_at)
        return data

    @staticmethod
    def _event(e: ConsentEvent) -> dict[str, Any]:
        return {
            "id": e.id,
            "at": _iso(e.at),
            "kind": e.kind,
            "source": e.source,
            "credential": e.credential_id,
            "user_id": e.user_id,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "list_id": e.list_id,
            "topic_id": e.topic_id,
            "send_id": e.send_id,
            "reason": e.reason,
            "ip": e.ip,
            "user_agent": e.user_agent,
        }

    # -- erasure --------------------------------------------------------------------------------
    def erase(self, email: str, *, why: str = "on request") -> Erasure:
        """Erase an address's personal data everywhere, keeping a keyed-hash suppression if it was suppressed."""
        normalised = normalise_email(email)
        addr = self.repo.address(self.actor.account_id, normalised)
        if addr is None and self.repo.contact(self.actor.account_id, normalised) is None:
            raise NotFound("address", normalised)
        return self._erase(normalised, addr, why=why)

    def erase_address(self, address_id: int, *, why: str = "on request") -> Erasure:
        """Erase the address with this id (confirmed link, retention)."""
        addr = self.repo.address_by_id(self.actor.account_id, address_id)
        if addr is None:
            raise NotFound("address")
        return self._erase(addr.email, addr, why=why)

    def _erase(self, email: str, addr: Address | None, *, why: str) -> Erasure:
        account_id = self.actor.account_id
        consent = ConsentService(self.session, self.actor, hash_key=self.hash_key)
        status: str | None = None
        if addr is not None:
            addr = ConsentRepository(self.session).lock_address(addr)
            # An ended temporary opt-out no longer suppresses; a running one is kept for good.
            status = consent.effective_status(addr)
        key = email_hash(self.hash_key, email)
        suppressed: str | None = None
        if status in rules.SUPPRESSING:
            self.repo.keep_suppression(account_id, key, status)
            suppressed = status
        else:
            # Erased before while suppressed, then re-created: the old suppression stays as it was.
            earlier = self.repo.suppression(account_id, key)
            suppressed = earlier.status if earlier is not None else None

        delivery_ids = self.repo.delivery_ids(account_id, addr.id if addr else None, email)
        self.repo.scrub_inbound(account_id, delivery_ids, email)
        self.repo.scrub_deliveries(delivery_ids)
        contact_removed = self.repo.delete_contact(account_id, email) > 0
        anonymised = 0
        if addr is not None:
            self.repo.delete_memberships(addr.id)
            anonymised = self.repo.scrub_ledger(addr.id)
        self.repo.delete_jobs_mentioning(account_id, email)
        if addr is not None:
            self.repo.delete_privacy_jobs(account_id, addr.id)
            self.repo.delete_address(addr.id)

        # The erasure's own ledger entry: who asked and through which edge, never the address or an IP.
        anonymous = ConsentService(self.session, dataclasses.replace(self.actor, ip=None, user_agent=None))
        note = f"address erased {why}; personal data removed"
        if suppressed:
            note += f"; keyed-hash suppression kept ({suppressed})"
        anonymous.record(None, kind="erasure", from_status=status, to_status=suppressed, reason=note)
        return Erasure(
            email=email,
            suppressed=suppressed,
            contact_removed=contact_removed,
            deliveries_scrubbed=len(delivery_ids),
            ledger_events_anonymised=anonymised,
        )


def purge_unconfirmed(session: Session, *, hash_key: bytes, days: int, limit: int = 200) -> int:
    """Delete unconfirmed subscriptions older than `days` (every account); erase addresses left with nothing.

    Returns how many subscriptions were purged. Each purge and each erasure is a ledger event with no
    personal data, written by the system.
    """
    repo = PrivacyRepository(session)
    cutoff = utcnow() - timedelta(days=days)
    purged = 0
    for sub in repo.stale_unconfirmed(cutoff, limit=limit):
        actor = Actor(account_id=sub.account_id, source="system")
        addr = repo.address_by_id(sub.account_id, sub.address_id)
        list_id, subscription_id = sub.list_id, sub.id
        repo.delete_subscription(subscription_id)
        ConsentService(session, actor, hash_key=hash_key).record(
            addr,
            kind="purge",
            from_status="unconfirmed",
            to_status=None,
            list_id=list_id,
            reason=f"unconfirmed subscription older than {days} days purged",
        )
        purged += 1
        # An address that only existed for this unconfirmed subscription goes with it.
        if addr is not None and addr.status in (rules.UNKNOWN, rules.PENDING) and not repo.holds_anything_else(addr):
            PrivacyService(session, actor, hash_key=hash_key).erase_address(addr.id, why="by retention")
    return purged
