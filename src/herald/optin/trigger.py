"""Starting a double opt-in: pick the rule, record the request, queue the opt-in email in the caller's transaction.

ListService calls `on_unconfirmed` when a subscription becomes unconfirmed; the Sign-Up.to emailOptIn edge
calls `request_optin` for a subscription that already is. Both return the OptinRecord (emailOptIn's record).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent import rules
from herald.consent.service import ConsentService
from herald.db.base import utcnow
from herald.errors import NotAllowed, NotFound, RateLimited
from herald.jobs.service import enqueue
from herald.lists.models import Subscription
from herald.optin.models import OptinRecord, OptinRule
from herald.optin.repository import OptinRepository

OPTIN_JOB = "optin.send"
MAX_EMAILS_PER_DAY = 10
WINDOW = timedelta(hours=24)
# Why an address is never mailed, as emailOptIn's errortype says it.
REFUSED_ERRORTYPE = {
    rules.SPAM_REPORTED: "Blacklisted",
    rules.OPTED_OUT: "Blacklisted",
    rules.BOUNCED: "Hard bounce",
}


def on_unconfirmed(session: Session, actor: Actor, subscription: Subscription) -> OptinRecord:
    """Queue the opt-in email for a subscription that just became unconfirmed."""
    return request_optin(session, actor, subscription)


def request_optin(session: Session, actor: Actor, subscription: Subscription) -> OptinRecord:
    """Record one opt-in request and queue its email (RateLimited past 10 per subscription per 24 h).

    A spam-reported, opted-out or bounced address is never mailed: the record is written with the reason
    and no job is queued.
    """
    repo = OptinRepository(session)
    sub = repo.lock_subscription(subscription.id)
    if sub is None or sub.account_id != actor.account_id:
        raise NotFound("subscription", subscription.id)
    if sub.status != "unconfirmed":
        raise NotAllowed(f"Not allowed for current status {sub.status}", current_status=sub.status)
    now = utcnow()
    since = now - WINDOW
    if repo.emails_since(sub.id, since) >= MAX_EMAILS_PER_DAY:
        oldest = repo.oldest_since(sub.id, since)
        retry = (oldest + WINDOW - now).total_seconds() if oldest is not None else WINDOW.total_seconds()
        raise RateLimited(
            f"at most {MAX_EMAILS_PER_DAY} opt-in emails per subscription in 24 hours", retry_after=max(retry, 1)
        )
    consent = ConsentService(session, actor)
    addr = consent.get_by_id(sub.address_id)
    status = consent.effective_status(addr)
    rule = choose_rule(repo, actor.account_id, sub.list_id)
    record = OptinRecord(
        account_id=actor.account_id,
        user_id=actor.user_id,
        subscription_id=sub.id,
        rule_id=rule.id if rule else None,
        message_id=rule.message_id if rule else None,
        created_at=now,
    )
    refused = REFUSED_ERRORTYPE.get(status)
    if refused is not None:
        record.completed, record.error, record.errortype = True, True, refused
        record.detail = f"address is {status}; no opt-in email was sent"
        repo.add(record)
        return record
    if status == rules.UNKNOWN:
        # Awaiting confirmation: the state machine allows unknown → pending only.
        consent.transition(addr, rules.PENDING, reason=f"double opt-in requested for list {sub.list_id}")
    repo.add(record)
    enqueue(
        session,
        OPTIN_JOB,
        {"record_id": record.id},
        account_id=actor.account_id,
        max_attempts=6,
    )
    return record


def choose_rule(repo: OptinRepository, account_id: int, list_id: int) -> OptinRule | None:
    """The list's own rule unless paused, else the catch-all unless paused, else None (the built-in message)."""
    rule = repo.rule_for_list(account_id, list_id)
    if rule is not None and not rule.paused:
        return rule
    catch_all = repo.catch_all(account_id)
    if catch_all is not None and not catch_all.paused:
        return catch_all
    return None
