"""What the public links do: one-click unsubscribe, the preferences form, open and click tracking.

The signed URL token is the only credential. Every consent change goes through ConsentService with
source "public" (the ledger keeps the visitor's IP and user agent and the send it came from).

One-click unsubscribe (RFC 8058) stops "this kind of mail": a send with an unsubscribe group (topic)
unsubscribes the address from that topic only, a send without one opts the address out globally. The
confirmation page links the preferences page, where "unsubscribe from everything" is one click away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from herald.accounts.models import Account
from herald.actor import Actor
from herald.consent import rules
from herald.consent.models import Address, Topic
from herald.consent.service import ConsentService, TopicState
from herald.db.base import utcnow
from herald.delivery import tokens
from herald.errors import Invalid, NotAllowed, NotFound
from herald.public.repository import PublicRepository
from herald.security import TokenSigner
from herald.sends.models import Delivery, DeliveryEvent, SingleSend
from herald.webhooks.outbox import emit

PAUSE_DAYS = (14, 30, 60, 90)
# Unsubscribe outcomes.
UNSUBSCRIBED, ALREADY, SUPPRESSED, GONE = "unsubscribed", "already", "suppressed", "gone"
# Preference actions on the global status.
KEEP, PAUSE, EVERYTHING = "keep", "pause", "unsubscribe"
_FORM_PURPOSE = "public.form"
# A preferences page's form stays valid for a day; a stale one asks the visitor to reload.
FORM_MAX_AGE = 24 * 3600
_REDIRECT_SCHEMES = ("http://", "https://")


@dataclass
class Recipient:
    """The delivery a public link points at, with its send, account and address (None once erased)."""

    delivery: Delivery
    send: SingleSend
    account: Account
    address: Address | None


@dataclass
class UnsubscribeResult:
    """What a one-click unsubscribe did."""

    outcome: str
    topic: Topic | None


@dataclass
class PreferencesView:
    """The preferences page's data for one recipient."""

    email: str | None
    status: str
    paused_until: datetime | None
    topics: list[TopicState]


@dataclass
class PreferencesResult:
    """What a preferences post changed, and what the consent rules refused, in words for the page."""

    changes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def form_token(signer: TokenSigner, delivery_token: str) -> str:
    """A signed hidden-field value proving a form was served by our page (CSRF defence without cookies)."""
    return signer.sign(_FORM_PURPOSE, delivery_token)


def check_form_token(signer: TokenSigner, delivery_token: str, value: str | None) -> bool:
    """Whether a posted form token was issued for this delivery within FORM_MAX_AGE."""
    if not value:
        return False
    try:
        return bool(signer.unsign(_FORM_PURPOSE, value, max_age=FORM_MAX_AGE) == delivery_token)
    except ValueError:
        return False


class PublicService:
    """Public-link actions for one visitor (IP and user agent go to the ledger and the events)."""

    def __init__(
        self,
        session: Session,
        signer: TokenSigner,
        *,
        hash_key: bytes | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        source: str = "public",
    ) -> None:
        self.session = session
        self.source = source
        self.signer = signer
        self.repo = PublicRepository(session)
        self.hash_key = hash_key
        self.ip = ip
        self.user_agent = user_agent

    # -- resolving a link ---------------------------------------------------------------------
    def recipient(self, purpose: str, token: str) -> Recipient:
        """The recipient behind a URL token; NotFound for a tampered, foreign-purpose or unknown token."""
        try:
            delivery_token = tokens.read(self.signer, purpose, token)
        except ValueError:
            raise NotFound("link") from None
        return self.recipient_by_delivery_token(delivery_token)

    def recipient_by_delivery_token(self, delivery_token: str) -> Recipient:
        """The recipient of a delivery named by its raw token (the mailto unsubscribe address carries it)."""
        delivery = self.repo.delivery_by_token(delivery_token)
        if delivery is None:
            raise NotFound("link")
        send = self.repo.send(delivery.send_id)
        account = self.repo.account(delivery.account_id)
        if send is None or account is None:
            raise NotFound("link")
        return Recipient(delivery, send, account, self.repo.address(account.id, delivery.address_id))

    def link_token(self, recipient: Recipient, purpose: str) -> str:
        """The URL token of another purpose for the same delivery (the unsubscribe page links preferences)."""
        return tokens.make(self.signer, purpose, recipient.delivery.token)

    def _consent(self, recipient: Recipient) -> ConsentService:
        actor = Actor(
            account_id=recipient.account.id, source=self.source, ip=self.ip, user_agent=self.user_agent, is_admin=False
        )
        return ConsentService(self.session, actor, hash_key=self.hash_key)

    def send_topic(self, recipient: Recipient) -> Topic | None:
        """The send's unsubscribe group, when it has one that still exists."""
        if recipient.send.topic_id is None:
            return None
        return self._consent(recipient).repo.topic(recipient.account.id, recipient.send.topic_id)

    # -- one-click unsubscribe ----------------------------------------------------------------
    def unsubscribe(self, recipient: Recipient) -> UnsubscribeResult:
        """RFC 8058 one-click unsubscribe: idempotent, never refused (a refusal is a no-op outcome)."""
        topic = self.send_topic(recipient)
        addr = recipient.address
        if addr is None:
            return UnsubscribeResult(GONE, topic)
        svc = self._consent(recipient)
        status = svc.effective_status(addr)
        if status in (rules.BOUNCED, rules.SPAM_REPORTED):
            return UnsubscribeResult(SUPPRESSED, topic)
        reason = f"one-click unsubscribe from send {recipient.send.id}"
        if topic is not None:
            changed = svc.unsubscribe_topic(addr, topic.id, reason=reason)
        else:
            changed = self._opt_out_for_good(svc, addr, status, reason, recipient.send.id)
        if changed:
            self._record_unsubscribe(recipient)
        return UnsubscribeResult(UNSUBSCRIBED if changed else ALREADY, topic)

    def _opt_out_for_good(self, svc: ConsentService, addr: Address, status: str, reason: str, send_id: int) -> bool:
        if status == rules.OPTED_OUT:
            if addr.opted_out_until is None:
                return False
            # A paused address that unsubscribes must not come back when the pause ends.
            svc.change_optout_end(addr, None, reason=reason, send_id=send_id)
            return True
        svc.transition(addr, rules.OPTED_OUT, reason=reason, send_id=send_id)
        return True

    def _record_unsubscribe(self, recipient: Recipient) -> None:
        if not self.repo.has_event(recipient.delivery.id, "unsubscribe"):
            self._event(recipient.delivery, "unsubscribe")

    # -- preferences ----------------------------------------------------------------------------
    def preferences(self, recipient: Recipient) -> PreferencesView:
        """The address's status, pause end and enabled topics, as the preferences page shows them."""
        addr = recipient.address
        if addr is None:
            return PreferencesView(None, rules.OPTED_OUT, None, [])
        svc = self._consent(recipient)
        status = svc.effective_status(addr)
        return PreferencesView(
            email=addr.email,
            status=status,
            paused_until=addr.opted_out_until if status == rules.OPTED_OUT else None,
            topics=svc.topic_states(addr, enabled_only=True),
        )

    def apply_preferences(
        self, recipient: Recipient, *, subscribed_topics: set[int], action: str, pause_days: int | None
    ) -> PreferencesResult:
        """Apply a preferences form: topic checkboxes, then keep / pause N days / unsubscribe from everything."""
        if action not in (KEEP, PAUSE, EVERYTHING):
            raise Invalid("action", "must be keep, pause or unsubscribe")
        if action == PAUSE and pause_days not in PAUSE_DAYS:
            raise Invalid("pause_days", "must be one of " + ", ".join(map(str, PAUSE_DAYS)))
        addr = recipient.address
        if addr is None:
            raise NotFound("address")
        svc = self._consent(recipient)
        result = PreferencesResult()
        reason = "preferences page"
        unsubscribed = False
        for topic in svc.topic_states(addr, enabled_only=True):
            wanted = topic.id in subscribed_topics
            if wanted and topic.unsubscribed:
                try:
                    if svc.resubscribe_topic(addr, topic.id, reason=reason):
                        result.changes.append(f"You will receive “{topic.name}” emails again.")
                except NotAllowed:
                    result.refused.append(f"“{topic.name}” cannot be resumed for this address.")
            elif not wanted and not topic.unsubscribed:
                if svc.unsubscribe_topic(addr, topic.id, reason=reason):
                    result.changes.append(f"You are unsubscribed from “{topic.name}”.")
                    unsubscribed = True
        if action == PAUSE and pause_days is not None:
            # A pause is not counted as an unsubscribe in the send's stats.
            self._pause(svc, recipient, addr, pause_days, result)
        elif action == EVERYTHING:
            unsubscribed = self._everything(svc, recipient, addr, result) or unsubscribed
        if unsubscribed:
            self._record_unsubscribe(recipient)
        return result

    def _pause(
        self, svc: ConsentService, recipient: Recipient, addr: Address, days: int, result: PreferencesResult
    ) -> None:
        until = utcnow() + timedelta(days=days)
        status = svc.effective_status(addr)
        reason = f"paused for {days} days on the preferences page"
        if status == rules.OPTED_OUT:
            if addr.opted_out_until is None:
                result.refused.append("You are unsubscribed from everything, so there is nothing to pause.")
                return
            if addr.opted_out_until >= until:
                result.refused.append("Your emails are already paused for longer than that.")
                return
            svc.change_optout_end(addr, until, reason=reason, send_id=recipient.send.id)
        elif rules.is_allowed(status, rules.OPTED_OUT):
            svc.transition(addr, rules.OPTED_OUT, until=until, reason=reason, send_id=recipient.send.id)
        else:
            result.refused.append("This address no longer receives our emails.")
            return
        result.changes.append(f"Emails are paused until {until.day} {until:%B %Y}.")

    def _everything(self, svc: ConsentService, recipient: Recipient, addr: Address, result: PreferencesResult) -> bool:
        status = svc.effective_status(addr)
        if status in (rules.BOUNCED, rules.SPAM_REPORTED):
            result.refused.append("This address no longer receives our emails.")
            return False
        reason = "unsubscribed from everything on the preferences page"
        if self._opt_out_for_good(svc, addr, status, reason, recipient.send.id):
            result.changes.append("You are unsubscribed from all our emails.")
            return True
        result.refused.append("You were already unsubscribed from all our emails.")
        return False

    # -- tracking -------------------------------------------------------------------------------
    def record_open(self, token: str) -> bool:
        """Record an open for a pixel token; False (and nothing recorded) for a bad one."""
        try:
            recipient = self.recipient(tokens.OPEN, token)
        except NotFound:
            return False
        self._event(recipient.delivery, "open")
        self._emit(recipient, "delivery.opened", {})
        return True

    def click(self, token: str, position: int) -> str:
        """Record a click and return the URL recorded for that link of the send; NotFound otherwise."""
        recipient = self.recipient(tokens.CLICK, token)
        link = self.repo.link(recipient.send.id, position)
        # Only links recorded for this very send are followed, and only to web addresses: no open redirect.
        if link is None or not link.url.lower().startswith(_REDIRECT_SCHEMES):
            raise NotFound("link", position)
        self._event(recipient.delivery, "click", link_id=link.id, detail=link.url)
        self._emit(recipient, "delivery.clicked", {"url": link.url, "position": position})
        return link.url

    def _event(self, delivery: Delivery, kind: str, *, link_id: int | None = None, detail: str | None = None) -> None:
        self.repo.add_event(
            DeliveryEvent(
                account_id=delivery.account_id,
                send_id=delivery.send_id,
                delivery_id=delivery.id,
                kind=kind,
                at=utcnow(),
                link_id=link_id,
                detail=detail,
                ip=(self.ip or None) and self.ip[:64],
                user_agent=(self.user_agent or None) and self.user_agent[:500],
            )
        )

    def _emit(self, recipient: Recipient, event: str, extra: dict[str, object]) -> None:
        email = recipient.address.email if recipient.address else recipient.delivery.email
        data = {"email": email, "send_id": recipient.send.id, "delivery_id": recipient.delivery.id, **extra}
        emit(self.session, recipient.account.id, event, data)
