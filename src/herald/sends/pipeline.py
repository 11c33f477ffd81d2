"""The delivery pipeline, a worker step: claim a batch → re-check consent → render → send → write outcomes.

Stages overlap: while one batch is on the wire the next one is claimed, and each half batch is written
back while the next half is on the wire; a half's outcomes are written before the half after next is sent,
so at most one batch is ever sent and not yet recorded, and a crash sends at most one batch twice. Database
work runs in threads (asyncio.to_thread), one transaction per claim and one per write-back; sending runs on
the event loop through ONE transport per worker, whose pool size bounds concurrency. Recipients are claimed
by id in batches, so memory stays flat in audience size.

Outcomes: accepted → `sent` (sent_at, deterministic Message-ID); SMTP 4xx or a dropped relay → `queued`
again with exponential backoff, `failed` after `delivery_max_attempts`; SMTP 5xx → `bounced`, the address
moves to `bounced` through the consent engine (source "worker") and a `bounce` DeliveryEvent is written;
no longer eligible at claim time → `suppressed` with the reason. A crashed worker's lease expires and
another worker (or the restarted one) reclaims its deliveries, so nobody is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from herald.delivery.dkim import DkimSigner, signer_from_settings
from herald.delivery.render import CompiledMessage, MessageSpec, compile_message
from herald.delivery.repository import ClaimHints, DeliveryRepository, Recipient, SendInfo
from herald.delivery.transport import PermanentFailure, TemporaryFailure, Transport, transport_from_url
from herald.errors import NotAllowed, NotFound
from herald.sends.models import DeliveryEvent
from herald.webhooks.outbox import emit

if TYPE_CHECKING:
    from herald.worker import Worker

log = logging.getLogger("herald.sends.pipeline")

# How long one step may keep claiming further batches before letting the other worker steps run.
STEP_BUDGET_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 6 * 3600


@dataclass
class Batch:
    """One claim: how many rows were leased, and the eligible ones to send with their compiled message."""

    claimed: int = 0
    recipients: list[tuple[Recipient, CompiledMessage]] = field(default_factory=list)


@dataclass
class Outcome:
    """What happened to one recipient."""

    recipient: Recipient
    kind: str  # sent | retry | bounced | failed
    detail: str | None = None
    domain: str | None = None  # of the Message-ID, for a sent message


@dataclass
class PipelineState:
    """Per worker: the long-lived transport and each send's compiled message."""

    transport: Transport | None = None
    dkim: DkimSigner | None = None
    dkim_loaded: bool = False
    compiled: dict[int, CompiledMessage] = field(default_factory=dict)
    claims: ClaimHints = field(default_factory=ClaimHints)


_STATES: WeakKeyDictionary[Worker, PipelineState] = WeakKeyDictionary()


def state_of(worker: Worker) -> PipelineState:
    """This worker's pipeline state (created on first use)."""
    state = _STATES.get(worker)
    if state is None:
        state = _STATES[worker] = PipelineState()
    return state


def _transport(worker: Worker) -> Transport:
    state = state_of(worker)
    if state.transport is None:
        state.transport = transport_from_url(worker.container.settings.smtp_url)
    return state.transport


# -- claim (in a thread) ---------------------------------------------------------------------------
def message_spec(info: SendInfo, base_url: str) -> MessageSpec:
    """What every recipient's message of this send is built from (also the UI's preview, so it shows the same)."""
    send, sender = info.send, info.sender
    host = base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    return MessageSpec(
        subject=send.subject,
        from_email=sender.from_email if sender else f"no-reply@{host}",
        from_name=sender.from_name if sender else None,
        reply_to=sender.reply_to if sender else None,
        sender_address=sender.address if sender else None,
        html=info.html,
        preheader=send.preheader or "",
        extra_headers=(("X-Herald-Send", str(send.id)),),
    )


def _compile(container: Container, state: PipelineState, info: SendInfo) -> CompiledMessage:
    """Compile a send once per worker and make sure its tracked links are recorded (by whichever worker first)."""
    if not state.dkim_loaded:
        state.dkim, state.dkim_loaded = signer_from_settings(container.settings), True
    settings = container.settings
    compiled = compile_message(
        message_spec(info, settings.public_base_url()),
        base_url=settings.public_base_url(),
        signer=container.signer,
        domain=settings.dkim_domain,
        dkim=state.dkim,
    )
    with container.transaction() as session:
        repo = DeliveryRepository(session)
        if not repo.links(info.send.id) and compiled.links:
            try:
                repo.add_links(info.send.id, compiled.links)
            except IntegrityError:  # another worker recorded the same links first
                session.rollback()
    state.compiled[info.send.id] = compiled
    return compiled


def claim_batch(container: Container, state: PipelineState, owner: str) -> Batch:
    """Lease a batch, suppress the no-longer-eligible, and return the rest ready to render."""
    settings = container.settings
    now = utcnow()
    batch = Batch()
    to_compile: list[SendInfo] = []
    eligible: list[Recipient] = []
    with container.transaction() as session:
        repo = DeliveryRepository(session)
        lease_until = now + timedelta(seconds=settings.delivery_lease_seconds)
        claimed = repo.claim(
            owner, limit=settings.delivery_batch_size, now=now, lease_until=lease_until, hints=state.claims
        )
        batch.claimed = len(claimed)
        if not claimed:
            return batch
        ids = list(claimed)
        suppressed: list[dict[str, Any]] = []
        for info in repo.send_infos(set(claimed.values())).values():
            ok, refused = repo.recipients(ids, info, now=now)
            eligible.extend(ok)
            suppressed.extend(
                {"b_id": i, "b_error": f"not eligible at send time: {why}", "b_attempts": 0}
                for i, why in refused.items()
            )
            if info.send.id not in state.compiled:
                to_compile.append(info)
        repo.finish(owner, suppressed, status="suppressed")
    for info in to_compile:
        _compile(container, state, info)
    batch.recipients = [(r, state.compiled[r.send_id]) for r in eligible]
    return batch


# -- send (on the event loop) ----------------------------------------------------------------------
async def _send_one(transport: Transport, recipient: Recipient, compiled: CompiledMessage) -> Outcome:
    try:
        data = compiled.render(email=recipient.email, token=recipient.token, values=recipient.values)
    except ValueError as exc:  # an address we cannot put in a header safely: never retried
        return Outcome(recipient, "failed", str(exc))
    try:
        await transport.send(compiled.spec.from_email, recipient.email, data)
    except PermanentFailure as exc:
        return Outcome(recipient, "bounced", str(exc))
    except TemporaryFailure as exc:
        return Outcome(recipient, "retry", str(exc))
    except Exception as exc:  # a transport bug must not lose the delivery: retry it later
        log.exception("sending delivery %s failed unexpectedly", recipient.id)
        return Outcome(recipient, "retry", f"{type(exc).__name__}: {exc}")
    return Outcome(recipient, "sent", domain=compiled.domain)


async def send_batch(transport: Transport, recipients: list[tuple[Recipient, CompiledMessage]]) -> list[Outcome]:
    """Render and send recipients concurrently (the transport's pool bounds it)."""
    return list(await asyncio.gather(*(_send_one(transport, r, c) for r, c in recipients)))


# -- write back (in a thread) ----------------------------------------------------------------------
def write_outcomes(container: Container, owner: str, outcomes: list[Outcome]) -> None:
    """Record a batch's outcomes: one statement per outcome kind, then the consent work for bounces."""
    if not outcomes:
        return
    settings = container.settings
    now = utcnow()
    groups: dict[str, list[dict[str, Any]]] = {"queued": [], "failed": [], "bounced": []}
    sent_by_domain: dict[str, list[int]] = {}
    for o in outcomes:
        if o.kind == "sent":
            sent_by_domain.setdefault(o.domain or "", []).append(o.recipient.id)
            continue
        attempts = o.recipient.attempts + 1
        row: dict[str, Any] = {"b_id": o.recipient.id, "b_attempts": attempts, "b_error": o.detail}
        if o.kind == "retry" and attempts < settings.delivery_max_attempts:
            delay = min(settings.delivery_retry_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
            groups["queued"].append({**row, "b_next": now + timedelta(seconds=delay)})
        elif o.kind == "bounced":
            groups["bounced"].append(row)
        else:
            groups["failed"].append(row)
    bounced = [o for o in outcomes if o.kind == "bounced"]
    sent = [o for o in outcomes if o.kind == "sent"]
    with container.transaction() as session:
        repo = DeliveryRepository(session)
        for domain, ids in sent_by_domain.items():
            repo.finish_sent(owner, ids, now=now, domain=domain)
        for status, rows in groups.items():
            repo.finish(owner, rows, status=status)
        for o in bounced:
            _record_bounce(container, session, o, now)
        if sent:
            hooked = repo.accounts_with_webhook({o.recipient.account_id for o in sent}, "delivery.sent")
            for o in sent:
                if o.recipient.account_id in hooked:
                    r = o.recipient
                    emit(session, r.account_id, "delivery.sent", {"email": r.email, "send_id": r.send_id, "id": r.id})
        repo.complete_sends(now, send_ids={o.recipient.send_id for o in outcomes})


def _record_bounce(container: Container, session: Any, outcome: Outcome, now: datetime) -> None:
    """A hard bounce: the address becomes `bounced` (unless already suppressed), with an event and a webhook."""
    r = outcome.recipient
    session.add(
        DeliveryEvent(
            account_id=r.account_id, send_id=r.send_id, delivery_id=r.id, kind="bounce", at=now, detail=outcome.detail
        )
    )
    consent = ConsentService(session, Actor(account_id=r.account_id, source="worker"), hash_key=container.hash_key)
    if r.address_id is not None:
        try:
            address = consent.get_by_id(r.address_id)
            consent.transition(address, "bounced", reason=f"hard bounce: {outcome.detail}", send_id=r.send_id)
        except (NotAllowed, NotFound):
            pass  # already suppressed (opted out, bounced, spam-reported) or erased: the event says enough
    emit(
        session,
        r.account_id,
        "delivery.bounced",
        {"email": r.email, "send_id": r.send_id, "id": r.id, "detail": outcome.detail},
    )


# -- the worker step -------------------------------------------------------------------------------
async def step(worker: Worker) -> bool:
    """Send what is due, batch after batch, for up to STEP_BUDGET_SECONDS; True when it did work."""
    container, owner, state = worker.container, worker.name, state_of(worker)
    deadline = time.monotonic() + STEP_BUDGET_SECONDS
    batch = await asyncio.to_thread(claim_batch, container, state, owner)
    if not batch.claimed:
        await asyncio.to_thread(_complete_idle, container)
        await close(worker)  # idle: give the relay its connections back
        return False
    transport = _transport(worker)
    writing: asyncio.Task[None] | None = None
    try:
        while batch.claimed:
            upcoming: asyncio.Task[Batch] | None = None
            if not worker.stopping.is_set() and time.monotonic() < deadline:
                upcoming = asyncio.create_task(asyncio.to_thread(claim_batch, container, state, owner))
            try:
                # A batch goes out in two halves, each written back while the next half is on the wire, so the
                # loop never idles for a write-back; a half's outcomes are written before the half after next
                # goes out, so at most two halves (one batch) are ever sent and not yet recorded, and a crash
                # re-sends at most one batch, as when the whole batch was written before the next one went out.
                for half in _halves(batch.recipients):
                    outcomes = await send_batch(transport, half)
                    if writing is not None:
                        previous, writing = writing, None
                        await previous
                    writing = asyncio.create_task(_write_back(worker, outcomes))
            finally:
                batch = await upcoming if upcoming is not None else Batch()
        if writing is not None:
            previous, writing = writing, None
            await previous
    finally:
        if writing is not None:  # leaving on an error: let the last write-back finish, it records what was sent
            await asyncio.gather(writing, return_exceptions=True)
    if worker.stopping.is_set():
        await close(worker)
    return True


def _halves(recipients: list[tuple[Recipient, CompiledMessage]]) -> list[list[tuple[Recipient, CompiledMessage]]]:
    middle = (len(recipients) + 1) // 2
    return [part for part in (recipients[:middle], recipients[middle:]) if part]


async def _write_back(worker: Worker, outcomes: list[Outcome]) -> None:
    """Write a sent batch's outcomes, retrying through a database outage while the lease still holds.

    Giving up would leave the batch leased, to be reclaimed and mailed again when the lease expires: retrying
    here is what lets a PostgreSQL restart pass without anyone getting the message twice.
    """
    container = worker.container
    deadline = time.monotonic() + container.settings.delivery_lease_seconds * 0.8
    delay = 0.2
    while True:
        try:
            await asyncio.to_thread(write_outcomes, container, worker.name, outcomes)
            return
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("writing %d outcomes failed, retrying in %.1f s: %s", len(outcomes), delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _complete_idle(container: Container) -> None:
    with container.transaction() as session:
        DeliveryRepository(session).complete_sends(utcnow())


async def close(worker: Worker) -> None:
    """Quit the worker's SMTP connections (idle, or the worker stopping); the next send reconnects."""
    state = _STATES.get(worker)
    if state is not None and state.transport is not None:
        await state.transport.close()


def _register() -> None:
    from herald.worker import register_step

    register_step("sends.deliver", step)


_register()
