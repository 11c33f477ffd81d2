"""Confirmation emails for "download my data" and "erase me", and the signed single-use links they carry.

The confirmation email is a durable job (kind `privacy.confirm`, payload: action and address id, never the
email). The job row is also the record of the request: its link is the job id signed for one action and
expiring after LINK_MAX_AGE_SECONDS, and redeeming it marks the payload `used`, so a link works once.
Erasing an address deletes its confirmation jobs, so their links die with it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from sqlalchemy.orm import Session

from herald.consent.privacy_repository import PRIVACY_ACTIONS, PrivacyRepository, privacy_job_key
from herald.db.base import utcnow
from herald.delivery.transport import PermanentFailure, TemporaryFailure, transport_from_url
from herald.jobs import service as jobs
from herald.security import TokenSigner

if TYPE_CHECKING:
    from herald.container import Container
    from herald.jobs.models import Job

CONFIRM_JOB = "privacy.confirm"
LINK_MAX_AGE_SECONDS = 24 * 3600
# A second request within this window sends no second email (stops the page being used to spam an inbox).
THROTTLE = timedelta(minutes=10)

_SUBJECTS = {"export": "Confirm: download your data", "erase": "Confirm: erase your data"}
_ASKS = {"export": "send you a copy of", "erase": "erase"}


class LinkRefused(Exception):
    """A confirmation link that is tampered with, expired, already used or for an erased address."""


def request_confirmation(session: Session, account_id: int, address_id: int, action: str) -> bool:
    """Queue the confirmation email for one action; False when one was queued moments ago."""
    if action not in PRIVACY_ACTIONS:
        raise ValueError(f"unknown privacy action {action!r}")
    key = privacy_job_key(address_id, action)
    if PrivacyRepository(session).recent_job(key, utcnow() - THROTTLE) is not None:
        return False
    jobs.enqueue(
        session,
        CONFIRM_JOB,
        {"action": action, "address_id": address_id},
        account_id=account_id,
        ordering_key=key,
        max_attempts=6,
    )
    return True


def link_token(signer: TokenSigner, job_id: int, action: str) -> str:
    """The signed, expiring token of one confirmation job's link."""
    return signer.sign(f"privacy.{action}", job_id)


def redeem(session: Session, signer: TokenSigner, action: str, token: str, *, consume: bool) -> tuple[int, int]:
    """(account id, address id) a valid link stands for; with `consume` the link is used up.

    Raises LinkRefused for a tampered, expired, foreign-purpose or already used link.
    """
    try:
        job_id = signer.unsign(f"privacy.{action}", token, max_age=LINK_MAX_AGE_SECONDS)
    except ValueError:
        raise LinkRefused("This link is not valid or has expired.") from None
    job = PrivacyRepository(session).locked_job(job_id) if isinstance(job_id, int) else None
    payload = job.payload if job is not None else {}
    if job is None or job.kind != CONFIRM_JOB or job.account_id is None or payload.get("action") != action:
        raise LinkRefused("This link is not valid or has expired.")
    if payload.get("used"):
        raise LinkRefused("This link was already used.")
    address_id = int(payload["address_id"])
    if consume:
        job.payload = {**payload, "used": True, "used_at": utcnow().isoformat()}
        session.flush()
    return job.account_id, address_id


def _message(container: Container, job: Job) -> tuple[str, str, bytes] | None:
    """(envelope sender, recipient, message bytes) for a confirmation job; None when nothing should go out."""
    action = str(job.payload.get("action"))
    if job.account_id is None or action not in PRIVACY_ACTIONS or job.payload.get("used"):
        return None
    with container.transaction() as session:
        repo = PrivacyRepository(session)
        addr = repo.address_by_id(job.account_id, int(job.payload.get("address_id", 0)))
        if addr is None:
            return None
        recipient = addr.email
        sender = repo.first_sender(job.account_id)
        account_name = repo.account_name(job.account_id) or "Herald"
        from_email = sender.from_email if sender else ""
        from_name = (sender.from_name if sender else None) or account_name
    base = container.settings.public_base_url()
    if not from_email:
        from_email = f"privacy@{urlparse(base).hostname or 'localhost'}"
    url = f"{base}/privacy/{action}/{link_token(container.signer, job.id, action)}"
    hours = LINK_MAX_AGE_SECONDS // 3600
    text = (
        f"Someone, hopefully you, asked {account_name} to {_ASKS[action]} the data held about this address.\n\n"
        f"To confirm, open this link within {hours} hours (it works once):\n{url}\n\n"
        "If you did not ask for this, ignore this email and nothing will happen.\n"
    )
    msg = EmailMessage()
    msg["Subject"] = _SUBJECTS[action]
    msg["From"] = formataddr((from_name, from_email))
    msg["To"] = recipient
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=from_email.rsplit("@", 1)[-1])
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    return from_email, recipient, msg.as_bytes()


def send_confirmation(container: Container, job: Job) -> None:
    """Job handler: mail the confirmation link to the address (transactional: sent whatever its consent)."""
    built = _message(container, job)
    if built is None:
        raise jobs.GiveUp("address erased or request already used")
    sender, recipient, data = built

    async def deliver() -> None:
        transport = transport_from_url(container.settings.smtp_url)
        try:
            await transport.send(sender, recipient, data)
        finally:
            await transport.close()

    try:
        asyncio.run(deliver())
    except TemporaryFailure as exc:
        raise jobs.RetryLater(str(exc)) from exc
    except PermanentFailure as exc:
        raise jobs.GiveUp(str(exc)) from exc


jobs.register(CONFIRM_JOB, send_confirmation, backoff=[10, 60, 300, 900, 3600])
