"""One-click confirmation of a double opt-in: the subscription becomes active, the address opted in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent import rules
from herald.consent.service import ConsentService
from herald.db.base import utcnow
from herald.errors import HeraldError
from herald.lists.models import MailingList
from herald.lists.service import ListService
from herald.optin.repository import OptinRepository

CONFIRMED, ALREADY, INVALID, REFUSED = "confirmed", "already", "invalid", "refused"


@dataclass
class Outcome:
    """What the confirmation page shows: the result and the account's branding."""

    result: str
    list_name: str | None = None
    email: str | None = None
    branding: dict[str, Any] = field(default_factory=dict)


def confirm_record(
    session: Session, record_id: int, *, hash_key: bytes, ip: str | None, user_agent: str | None
) -> Outcome:
    """Confirm the subscription behind an opt-in record (the click on its link); safe to repeat."""
    repo = OptinRepository(session)
    record = repo.record_by_id(record_id)
    if record is None:
        return Outcome(INVALID)
    account = repo.account(record.account_id)
    branding = dict(account.branding or {}) if account is not None else {}
    branding.setdefault("name", account.name if account is not None else "")
    sub = repo.lock_subscription(record.subscription_id)
    if sub is None:
        return Outcome(INVALID, branding=branding)
    mailing_list = session.get(MailingList, sub.list_id)
    list_name = mailing_list.name if mailing_list is not None else None
    actor = Actor(account_id=record.account_id, source="public", ip=ip, user_agent=user_agent, is_admin=False)
    consent = ConsentService(session, actor, hash_key=hash_key)
    addr = consent.get_by_id(sub.address_id)
    outcome = Outcome(ALREADY, list_name=list_name, email=addr.email, branding=branding)
    if record.confirmed or sub.status == "active":
        return outcome
    if sub.status != "unconfirmed":
        outcome.result = INVALID
        return outcome
    try:
        ListService(session, actor, hash_key=hash_key).confirm(sub, reason="double opt-in confirmed by link")
    except HeraldError:
        # A suppressed address or a deleted list: nothing changes, the page says so.
        outcome.result = REFUSED
        return outcome
    if rules.is_allowed(consent.effective_status(addr), rules.OPTED_IN):
        consent.transition(addr, rules.OPTED_IN, reason=f"double opt-in confirmed for list {sub.list_id}")
    repo.mark_confirmed(sub.id, utcnow())
    outcome.result = CONFIRMED
    return outcome
