"""The consent engine: every change of an address's consent goes through here and into the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent import rules
from herald.consent.addresses import normalise_email
from herald.consent.models import Address, ConsentEvent, Suppression, Topic, TopicUnsubscribe
from herald.consent.repository import ConsentRepository
from herald.db.base import utcnow
from herald.errors import Invalid, NotAllowed, NotFound
from herald.security import hmac_sha256_hex
from herald.webhooks.outbox import emit


@dataclass(frozen=True)
class TopicState:
    """One topic as seen by one address."""

    id: int
    name: str
    description: str
    enabled: bool
    unsubscribed: bool


class ConsentState(Protocol):
    """What the status of an address as of now depends on (an Address, or a plain read of its columns)."""

    @property
    def status(self) -> str: ...

    @property
    def opted_out_until(self) -> datetime | None: ...

    @property
    def status_before_optout(self) -> str | None: ...


def effective_status(addr: ConsentState) -> str:
    """The status as of now: an ended temporary opt-out reads as the state it returns to (no session needed)."""
    if addr.status == rules.OPTED_OUT and addr.opted_out_until is not None and addr.opted_out_until <= utcnow():
        return addr.status_before_optout or rules.UNKNOWN
    return addr.status


def email_hash(key: bytes, email: str) -> str:
    """Keyed hash of a normalised email, kept after erasure so the address stays suppressed."""
    return hmac_sha256_hex(key, email.encode())


class ConsentService:
    """Address state machine, topic unsubscribes and the append-only ledger, for one actor."""

    def __init__(self, session: Session, actor: Actor, *, hash_key: bytes | None = None) -> None:
        self.session = session
        self.actor = actor
        self.repo = ConsentRepository(session)
        self._hash_key = hash_key

    # -- addresses ------------------------------------------------------------------------------
    def find(self, email: str) -> Address | None:
        """The address for an email (normalised), or None when the account has never seen it."""
        return self.repo.address(self.actor.account_id, normalise_email(email))

    def get(self, email: str) -> Address:
        """The address for an email, or NotFound."""
        addr = self.find(email)
        if addr is None:
            raise NotFound("address", normalise_email(email))
        return addr

    def get_by_id(self, address_id: int) -> Address:
        """The address with this id in the actor's account, or NotFound."""
        addr = self.repo.address_by_id(self.actor.account_id, address_id)
        if addr is None:
            raise NotFound("address", address_id)
        return addr

    def ensure(self, email: str) -> Address:
        """The address for an email, created as `unknown` when new.

        An address erased earlier comes back in its suppressing state (found by its keyed hash), and the
        ledger records that it was re-suppressed.
        """
        normalised = normalise_email(email)
        addr = self.repo.address(self.actor.account_id, normalised)
        if addr is not None:
            return addr
        addr = Address(account_id=self.actor.account_id, email=normalised, status=rules.UNKNOWN)
        self.repo.add(addr)
        suppression = self._suppression_for(normalised)
        if suppression is not None:
            addr.status = suppression.status
            self._ledger(
                addr,
                kind="suppressed",
                from_status=rules.UNKNOWN,
                to_status=suppression.status,
                reason="address was erased earlier while suppressed; suppression kept",
            )
        return addr

    def _suppression_for(self, email: str) -> Suppression | None:
        if self._hash_key is None:
            return None
        return self.repo.suppression(self.actor.account_id, email_hash(self._hash_key, email))

    # -- the state machine ----------------------------------------------------------------------
    def set_status(
        self,
        email: str,
        status: str,
        *,
        until: datetime | None = None,
        reason: str | None = None,
        create: bool = False,
        send_id: int | None = None,
    ) -> Address:
        """Move an address to `status` if the rules allow it, writing the ledger.

        `until` makes an opt-out temporary: when it passes the address returns to the state it had.
        Raises NotAllowed carrying the current state when the transition is refused, and NotFound for an
        unknown address unless `create`.
        """
        addr = self.ensure(email) if create else self.get(email)
        return self.transition(addr, status, until=until, reason=reason, send_id=send_id)

    def transition(
        self,
        addr: Address,
        status: str,
        *,
        until: datetime | None = None,
        reason: str | None = None,
        send_id: int | None = None,
    ) -> Address:
        """Apply one transition to a loaded address (see `set_status`)."""
        if status not in rules.STATUSES or status == rules.UNKNOWN:
            raise Invalid("status", f"must be one of {', '.join(rules.STATUSES[1:])}")
        if until is not None and status != rules.OPTED_OUT:
            raise Invalid("until", "only an opt-out can be temporary")
        now = utcnow()
        if until is not None and until <= now:
            raise Invalid("until", "must be in the future")
        addr = self.repo.lock_address(addr)
        self._expire_if_due(addr, now)
        current = addr.status
        if not rules.is_allowed(current, status):
            raise NotAllowed(f"Not allowed for current status {current}", current_status=current)
        if status == rules.OPTED_OUT and until is not None:
            addr.status_before_optout = current
            addr.opted_out_until = until
        else:
            addr.status_before_optout = None
            addr.opted_out_until = None
        addr.status = status
        addr.updated_at = now
        self._ledger(addr, kind="status", from_status=current, to_status=status, reason=reason, send_id=send_id)
        emit(
            self.session,
            self.actor.account_id,
            "address.status_changed",
            {"email": addr.email, "from_status": current, "to_status": status, "source": self.actor.source},
        )
        return addr

    def change_optout_end(
        self, addr: Address, until: datetime | None, *, reason: str | None = None, send_id: int | None = None
    ) -> Address:
        """Move the end of a current opt-out, or make it permanent (`until=None`), writing the ledger.

        An opted-out address may not be opted out again by `transition`; this is how a paused address that
        then unsubscribes stops being mailed when its pause would have ended.
        """
        now = utcnow()
        if until is not None and until <= now:
            raise Invalid("until", "must be in the future")
        addr = self.repo.lock_address(addr)
        self._expire_if_due(addr, now)
        if addr.status != rules.OPTED_OUT:
            raise NotAllowed(f"Not allowed for current status {addr.status}", current_status=addr.status)
        if addr.opted_out_until == until:
            return addr
        addr.opted_out_until = until
        if until is None:
            addr.status_before_optout = None
        addr.updated_at = now
        self._ledger(
            addr, kind="status", from_status=rules.OPTED_OUT, to_status=rules.OPTED_OUT, reason=reason, send_id=send_id
        )
        return addr

    def _expire_if_due(self, addr: Address, now: datetime) -> None:
        if addr.status == rules.OPTED_OUT and addr.opted_out_until is not None and addr.opted_out_until <= now:
            self._expire(addr, now)

    def _expire(self, addr: Address, now: datetime) -> None:
        previous = addr.status_before_optout or rules.UNKNOWN
        addr.status = previous
        addr.opted_out_until = None
        addr.status_before_optout = None
        addr.updated_at = now
        self._ledger(
            addr,
            kind="status",
            from_status=rules.OPTED_OUT,
            to_status=previous,
            reason="temporary opt-out expired",
            system=True,
        )

    def expire_temporary_optouts(self) -> int:
        """Return every address whose temporary opt-out has ended to its previous state (scheduled job)."""
        now = utcnow()
        count = 0
        for addr in self.repo.expired_optouts(now):
            locked = self.repo.lock_address(addr)
            if locked.status == rules.OPTED_OUT and locked.opted_out_until and locked.opted_out_until <= now:
                self._expire(locked, now)
                count += 1
        return count

    def effective_status(self, addr: Address) -> str:
        """The status as of now: an ended temporary opt-out reads as the state it returns to."""
        return effective_status(addr)

    # -- topics ---------------------------------------------------------------------------------
    def topic(self, topic_id: int) -> Topic:
        """A topic of the actor's account, or NotFound."""
        topic = self.repo.topic(self.actor.account_id, topic_id)
        if topic is None:
            raise NotFound("topic", topic_id)
        return topic

    def create_topic(self, name: str, *, description: str = "", enabled: bool = True) -> Topic:
        """A new topic of the actor's account."""
        name = name.strip()
        if not name:
            raise Invalid("name", "must not be empty")
        topic = Topic(account_id=self.actor.account_id, name=name, description=description, enabled=enabled)
        self.repo.add(topic)
        return topic

    def unsubscribe_topic(self, addr: Address, topic_id: int, *, reason: str | None = None) -> bool:
        """Unsubscribe an address from one topic; False (and no ledger entry) when it already was."""
        topic = self.topic(topic_id)
        if self.repo.topic_unsubscribe(addr.id, topic.id) is not None:
            return False
        self.repo.add(TopicUnsubscribe(address_id=addr.id, topic_id=topic.id))
        self._ledger(
            addr, kind="topic", from_status="subscribed", to_status="unsubscribed", topic_id=topic.id, reason=reason
        )
        emit(
            self.session,
            self.actor.account_id,
            "topic.unsubscribed",
            {"email": addr.email, "topic_id": topic.id, "topic": topic.name},
        )
        return True

    def resubscribe_topic(self, addr: Address, topic_id: int, *, reason: str | None = None) -> bool:
        """Undo a topic unsubscribe; refused while the address is spam-reported or bounced."""
        topic = self.topic(topic_id)
        if addr.status in (rules.SPAM_REPORTED, rules.BOUNCED):
            raise NotAllowed(f"Not allowed for current status {addr.status}", current_status=addr.status)
        if self.repo.topic_unsubscribe(addr.id, topic.id) is None:
            return False
        self.repo.remove_topic_unsubscribe(addr.id, topic.id)
        self._ledger(
            addr, kind="topic", from_status="unsubscribed", to_status="subscribed", topic_id=topic.id, reason=reason
        )
        return True

    def topic_states(self, addr: Address, *, enabled_only: bool = False) -> list[TopicState]:
        """Every topic of the account with this address's unsubscribe flag."""
        unsubscribed = self.repo.unsubscribed_topic_ids(addr.id)
        return [
            TopicState(t.id, t.name, t.description, t.enabled, t.id in unsubscribed)
            for t in self.repo.topics(self.actor.account_id, enabled_only=enabled_only)
        ]

    def unsubscribed_topic_ids(self, addr: Address) -> set[int]:
        """Ids of the topics this address left."""
        return self.repo.unsubscribed_topic_ids(addr.id)

    # -- ledger ---------------------------------------------------------------------------------
    def record_subscription(
        self, addr: Address, list_id: int, from_status: str | None, to_status: str, *, reason: str | None = None
    ) -> None:
        """Ledger entry for a list-subscription change (an event of the address too)."""
        self._ledger(
            addr, kind="subscription", from_status=from_status, to_status=to_status, list_id=list_id, reason=reason
        )

    def record(
        self,
        addr: Address | None,
        *,
        kind: str,
        reason: str | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        list_id: int | None = None,
    ) -> ConsentEvent:
        """Ledger entry of another kind (erasure, purge, …) written by a feature outside this module."""
        return self._ledger(
            addr, kind=kind, from_status=from_status, to_status=to_status, reason=reason, list_id=list_id
        )

    def events(self, addr: Address, *, after_id: int = 0, limit: int = 100) -> Sequence[ConsentEvent]:
        """The address's ledger, oldest first."""
        return self.repo.events(addr.id, after_id=after_id, limit=limit)

    def _ledger(
        self,
        addr: Address | None,
        *,
        kind: str,
        from_status: str | None,
        to_status: str | None,
        reason: str | None = None,
        list_id: int | None = None,
        topic_id: int | None = None,
        send_id: int | None = None,
        system: bool = False,
    ) -> ConsentEvent:
        actor = self.actor
        event = ConsentEvent(
            account_id=addr.account_id if addr is not None else actor.account_id,
            address_id=addr.id if addr is not None else None,
            at=utcnow(),
            source="system" if system else actor.source,
            credential_id=None if system else actor.credential_id,
            user_id=None if system else actor.user_id,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            list_id=list_id,
            topic_id=topic_id,
            send_id=send_id,
            reason=(reason or None) and reason[:2000],
            ip=None if system else actor.ip,
            user_agent=None if system or not actor.user_agent else actor.user_agent[:500],
        )
        self.repo.add(event)
        return event
