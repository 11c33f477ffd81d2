"""The worker side of double opt-in: render and send one queued opt-in email, then record what happened.

SMTP runs outside any database transaction. A 5xx is a hard bounce (recorded, and the address marked
bounced); 4xx and connection trouble are retried on the job's schedule and end as a soft bounce.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from herald.actor import Actor
from herald.consent import rules
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from herald.delivery.transport import PermanentFailure, TemporaryFailure, transport_from_url
from herald.jobs import service as jobs
from herald.jobs.models import Job
from herald.lists.models import MailingList
from herald.optin import render
from herald.optin.models import OptinRecord
from herald.optin.repository import OptinRepository
from herald.optin.trigger import OPTIN_JOB, REFUSED_ERRORTYPE

log = logging.getLogger("herald.optin")
# Retry schedule of an opt-in email after a temporary failure (seconds).
BACKOFF = [30.0, 120.0, 600.0, 1800.0, 3600.0]


@dataclass(frozen=True)
class Outgoing:
    """One rendered opt-in email, ready for the transport."""

    sender: str
    recipient: str
    data: bytes
    message_id: str


def _prepare(container: Container, record_id: int) -> Outgoing | None:
    """Render the email for a record, or None when there is nothing (more) to send."""
    with container.transaction() as session:
        repo = OptinRepository(session)
        record = repo.record_by_id(record_id)
        if record is None or record.completed:
            return None
        sub = repo.subscription(record.subscription_id)
        if sub is None or sub.status != "unconfirmed":
            _finish(record, error=None, detail="subscription no longer awaits confirmation")
            return None
        actor = Actor(account_id=record.account_id, source="worker")
        consent = ConsentService(session, actor)
        addr = consent.get_by_id(sub.address_id)
        status = consent.effective_status(addr)
        if status in REFUSED_ERRORTYPE:
            _finish(record, error=REFUSED_ERRORTYPE[status], detail=f"address is {status}; not sent")
            return None
        account = repo.account(record.account_id)
        branding = dict(account.branding or {}) if account is not None else {}
        brand = str(branding.get("name") or (account.name if account else "us"))
        mailing_list = session.get(MailingList, sub.list_id)
        list_name = mailing_list.name if mailing_list is not None else "our list"
        message = repo.message(record.account_id, record.message_id) if record.message_id is not None else None
        if message is not None:
            # A deleted message is still sent (seed 004): no deleted_at check here.
            content = render.OptinContent(subject=message.subject, html=message.html or "", text=message.text or "")
        else:
            content = render.default_content(list_name, brand)
        sender = repo.sender(record.account_id, message.sender_id) if message and message.sender_id else None
        base = container.settings.public_base_url()
        url = f"{base}/c/{render.confirm_token(container.signer, record.id)}"
        values = render.merge_values(repo.contact(record.account_id, addr.email), addr.email, list_name, url)
        email = render.build_email(
            content,
            values=values,
            from_email=sender.from_email if sender else render.fallback_from(base),
            from_name=(sender.from_name if sender else None) or brand,
            reply_to=sender.reply_to if sender else None,
            to_email=addr.email,
        )
        return Outgoing(
            sender=sender.from_email if sender else render.fallback_from(base),
            recipient=addr.email,
            data=email.as_bytes(),
            message_id=str(email["Message-ID"]),
        )


def _finish(record: OptinRecord, *, error: str | None, detail: str | None = None, ref: str | None = None) -> None:
    record.completed = True
    record.error = error is not None
    record.errortype = error
    record.detail = detail
    if ref is not None:
        record.message_ref = ref[:300]
        record.sent_at = utcnow()


async def _send(container: Container, out: Outgoing) -> None:
    transport = transport_from_url(container.settings.smtp_url)
    try:
        await transport.send(out.sender, out.recipient, out.data)
    finally:
        await transport.close()


def _record_outcome(
    container: Container, record_id: int, *, error: str | None, detail: str | None, ref: str | None
) -> None:
    with container.transaction() as session:
        repo = OptinRepository(session)
        record = repo.record_by_id(record_id)
        if record is None:
            return
        _finish(record, error=error, detail=detail, ref=ref)
        if error == "Hard bounce":
            sub = repo.subscription(record.subscription_id)
            consent = ConsentService(session, Actor(account_id=record.account_id, source="worker"))
            if sub is not None:
                addr = consent.get_by_id(sub.address_id)
                if rules.is_allowed(consent.effective_status(addr), rules.BOUNCED):
                    consent.transition(addr, rules.BOUNCED, reason=f"opt-in email refused: {detail}")


def send_optin(container: Container, job: Job) -> None:
    """Job handler: send one opt-in email and record completed / error on its OptinRecord."""
    record_id = int(job.payload["record_id"])
    out = _prepare(container, record_id)
    if out is None:
        return
    try:
        asyncio.run(_send(container, out))
    except PermanentFailure as exc:
        _record_outcome(container, record_id, error="Hard bounce", detail=str(exc)[:1000], ref=None)
        return
    except (TemporaryFailure, OSError, TimeoutError) as exc:
        if job.attempts >= job.max_attempts:
            _record_outcome(container, record_id, error="Soft bounce", detail=str(exc)[:1000], ref=None)
            raise jobs.GiveUp(f"soft bounce: {exc}") from exc
        raise jobs.RetryLater(str(exc)) from exc
    except Exception as exc:
        log.exception("opt-in email %s failed", record_id)
        _record_outcome(container, record_id, error="Failed", detail=f"{type(exc).__name__}: {exc}"[:1000], ref=None)
        raise jobs.GiveUp(str(exc)) from exc
    _record_outcome(container, record_id, error=None, detail=None, ref=out.message_id)


jobs.register(OPTIN_JOB, send_optin, backoff=BACKOFF)
