"""The delivery pipeline end to end: real worker loop, real SMTP conversation (aiosmtpd), SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from herald.consent.models import Address, ConsentEvent
from herald.contacts.models import Contact
from herald.container import Container
from herald.db.base import utcnow
from herald.delivery import tokens
from herald.security import new_hex
from herald.sends import pipeline
from herald.sends.models import STATUS_COMPLETED, STATUS_RUNNING, Delivery, DeliveryEvent, SendLink, SingleSend
from herald.settings import Settings
from herald.worker import Worker
from tests.conftest import make_account
from tests.sends.factory import sender_and_send

HTML = (
    "<html><head><style>h1 { color: #123456 }</style></head><body><h1>Hello ((first_name|friend))</h1>"
    '<p>From ((sender_name)), ((sender_address)).</p><a href="https://shop.example/sale">Sale</a>'
    '<a href="((unsubscribe_preferences))">Preferences</a></body></html>'
)


def _container(container: Container, settings: Settings, **overrides: Any) -> Container:
    return dataclasses.replace(container, settings=settings.model_copy(update=overrides))


def _make_send(
    container: Container, n: int, *, status: int = STATUS_RUNNING, names: list[str] | None = None
) -> tuple[int, list[str]]:
    account_id = make_account(container, f"acct-{uuid.uuid4().hex[:6]}")["account_id"]
    emails = [f"r{i}@example.org" for i in range(n)]
    with container.transaction() as session:
        send = sender_and_send(
            session,
            account_id,
            name="Sale",
            subject="Hi ((first_name|there))",
            preheader="Only today",
            template_html=HTML,
            status=status,
        )
        for i, email in enumerate(emails):
            first = names[i] if names else f"N{i}"
            contact = Contact(account_id=account_id, email=email, first_name=first)
            address = Address(account_id=account_id, email=email, status="unknown")
            session.add_all([contact, address])
            session.flush()
            session.add(
                Delivery(
                    account_id=account_id,
                    send_id=send.id,
                    address_id=address.id,
                    contact_id=contact.id,
                    email=email,
                    token=new_hex(32),
                    status="queued",
                )
            )
        return send.id, emails


def _send_status(container: Container, send_id: int) -> int:
    with container.sessions() as session:
        return int(session.scalar(select(SingleSend.status).where(SingleSend.id == send_id)) or 0)


def _deliveries(container: Container, send_id: int) -> list[Delivery]:
    with container.sessions() as session:
        return list(session.scalars(select(Delivery).where(Delivery.send_id == send_id).order_by(Delivery.id)))


async def _run_workers(containers: list[Container], send_id: int, *, timeout: float = 60, until: Any = None) -> None:
    workers = [Worker(c, name=f"test-worker-{i}") for i, c in enumerate(containers)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    done = until or (lambda: _send_status(containers[0], send_id) == STATUS_COMPLETED)
    deadline = time.monotonic() + timeout
    try:
        while not await asyncio.to_thread(done):
            if time.monotonic() > deadline:
                raise AssertionError("the send did not complete in time")
            await asyncio.sleep(0.05)
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
        for w in workers:
            await pipeline.close(w)


def run_until_completed(container: Container, send_id: int, **kw: Any) -> None:
    """Run a real worker loop until the send is completed (or `until` says stop)."""
    asyncio.run(_run_workers([container], send_id, **kw))


def test_one_mail_per_queued_delivery_with_merge_tags_and_headers(
    container: Container, smtp_settings: Settings, smtp_sink: Any
) -> None:
    c = _container(container, smtp_settings, delivery_batch_size=7)
    send_id, emails = _make_send(c, 20)
    with c.transaction() as session:  # one recipient was left out at launch: never mailed
        d = session.scalars(select(Delivery).where(Delivery.email == emails[0])).one()
        d.status = "suppressed"
    run_until_completed(c, send_id)

    assert sorted(r for m in smtp_sink.messages for r in m.rcpt_tos) == sorted(emails[1:])
    rows = {d.email: d for d in _deliveries(c, send_id)}
    assert rows[emails[0]].status == "suppressed"
    msg = smtp_sink.to(emails[3])[0].message
    d3 = rows[emails[3]]
    assert d3.status == "sent" and d3.sent_at is not None and d3.attempts == 1 and d3.lease_owner is None
    assert msg["Message-ID"] == d3.message_id == f"<{d3.token}@shop.example>"
    assert msg["Subject"] == "Hi N3"
    assert msg["From"] == "Shop <news@shop.example>"
    assert msg["To"] == emails[3]
    unsubscribe = f"http://herald.test/u/{tokens.make(c.signer, tokens.UNSUBSCRIBE, d3.token)}"
    assert msg["List-Unsubscribe"].startswith(f"<{unsubscribe}>, <mailto:")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hello N3" in html and 'style="color: #123456;"' in html and "From Shop, 1 Main St." in text
    assert f"http://herald.test/t/c/{tokens.make(c.signer, tokens.CLICK, d3.token)}/1" in html
    assert f"http://herald.test/p/{tokens.make(c.signer, tokens.PREFERENCES, d3.token)}" in html
    assert "Only today" in html
    with c.sessions() as session:
        links = session.scalars(select(SendLink).where(SendLink.send_id == send_id)).all()
        assert [(link.position, link.url) for link in links] == [(1, "https://shop.example/sale")]
        completed = session.get(SingleSend, send_id)
        assert completed is not None and completed.completed_at is not None


def test_header_injection_in_merge_values_fails_safely(
    container: Container, smtp_settings: Settings, smtp_sink: Any
) -> None:
    c = _container(container, smtp_settings)
    evil = "Eve\r\nBcc: victim@example.com\r\n\r\n<script>x</script>((email))"
    send_id, emails = _make_send(c, 1, names=[evil])
    run_until_completed(c, send_id)
    [received] = smtp_sink.messages
    assert received.rcpt_tos == emails
    msg = received.message
    assert msg["Bcc"] is None and b"\r\nBcc:" not in received.data.split(b"\r\n\r\n", 1)[0]
    assert "Bcc: victim@example.com" in msg["Subject"]  # inert text inside the (encoded) subject
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;((email))" in html


def test_dkim_signature_verifies(container: Container, smtp_settings: Settings, smtp_sink: Any, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    c = _container(
        container,
        smtp_settings,
        dkim_domain="shop.example",
        dkim_selector="s1",
        dkim_private_key_path=tmp_path / "dkim.pem",
    )
    send_id, _ = _make_send(c, 2)
    run_until_completed(c, send_id)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.shop.example."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    for received in smtp_sink.wait_for(2):
        assert received.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.data, dnsfunc=dns)
        assert not dkim.verify(received.data.replace(b"Subject: Hi", b"Subject: Yo"), dnsfunc=dns)


def test_4xx_then_success_is_retried(container: Container, smtp_settings: Settings, smtp_sink: Any) -> None:
    c = _container(container, smtp_settings, delivery_retry_seconds=0)
    send_id, emails = _make_send(c, 1)
    smtp_sink.handler.temporary_failures = 2
    run_until_completed(c, send_id)
    assert len(smtp_sink.to(emails[0])) == 1
    [d] = _deliveries(c, send_id)
    assert (d.status, d.attempts, d.error) == ("sent", 3, None)


def test_4xx_until_the_limit_fails(container: Container, smtp_settings: Settings, smtp_sink: Any) -> None:
    c = _container(container, smtp_settings, delivery_retry_seconds=0, delivery_max_attempts=2)
    send_id, _ = _make_send(c, 1)
    smtp_sink.handler.temporary_failures = 5
    run_until_completed(c, send_id)
    [d] = _deliveries(c, send_id)
    assert d.status == "failed" and d.attempts == 2 and "451" in (d.error or "")
    assert smtp_sink.messages == []


def test_4xx_waits_for_its_backoff(container: Container, smtp_settings: Settings, smtp_sink: Any) -> None:
    c = _container(container, smtp_settings, delivery_retry_seconds=3600)
    send_id, _ = _make_send(c, 1)
    smtp_sink.handler.temporary_failures = 1

    def retried() -> bool:
        return _deliveries(c, send_id)[0].attempts == 1

    run_until_completed(c, send_id, until=retried)
    [d] = _deliveries(c, send_id)
    assert d.status == "queued" and d.next_attempt_at is not None
    assert d.next_attempt_at > utcnow() + timedelta(minutes=50)
    assert _send_status(c, send_id) == STATUS_RUNNING


def test_5xx_bounces_the_address(container: Container, smtp_settings: Settings, smtp_sink: Any) -> None:
    c = _container(container, smtp_settings)
    send_id, emails = _make_send(c, 3)
    smtp_sink.handler.refuse[emails[1]] = "550 5.1.1 no such user"
    run_until_completed(c, send_id)
    rows = {d.email: d for d in _deliveries(c, send_id)}
    assert rows[emails[1]].status == "bounced" and "550" in (rows[emails[1]].error or "")
    assert rows[emails[0]].status == rows[emails[2]].status == "sent"
    with c.sessions() as session:
        address = session.scalars(select(Address).where(Address.email == emails[1])).one()
        assert address.status == "bounced"
        event = session.scalars(select(ConsentEvent).where(ConsentEvent.address_id == address.id)).one()
        assert (event.source, event.from_status, event.to_status, event.send_id) == (
            "worker",
            "unknown",
            "bounced",
            send_id,
        )
        [bounce] = session.scalars(select(DeliveryEvent).where(DeliveryEvent.send_id == send_id)).all()
        assert bounce.kind == "bounce" and bounce.delivery_id == rows[emails[1]].id


def test_expired_lease_is_reclaimed_and_a_live_one_is_not(
    container: Container, smtp_settings: Settings, smtp_sink: Any
) -> None:
    c = _container(container, smtp_settings)
    send_id, emails = _make_send(c, 2)
    with c.transaction() as session:
        dead, alive = session.scalars(select(Delivery).where(Delivery.send_id == send_id).order_by(Delivery.id))
        dead.status, dead.lease_owner, dead.lease_until = "sending", "crashed", utcnow() - timedelta(seconds=1)
        alive.status, alive.lease_owner, alive.lease_until = "sending", "busy", utcnow() + timedelta(hours=1)

    run_until_completed(c, send_id, until=lambda: len(smtp_sink.messages) >= 1)
    time.sleep(0.3)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [[emails[0]]]
    rows = _deliveries(c, send_id)
    assert rows[0].status == "sent" and rows[1].status == "sending" and rows[1].lease_owner == "busy"
    assert _send_status(c, send_id) == STATUS_RUNNING


def test_unsubscribed_while_queued_is_not_mailed(container: Container, smtp_settings: Settings, smtp_sink: Any) -> None:
    c = _container(container, smtp_settings)
    send_id, emails = _make_send(c, 3)
    with c.transaction() as session:
        address = session.scalars(select(Address).where(Address.email == emails[2])).one()
        address.status = "opted_out"
    run_until_completed(c, send_id)
    assert sorted(r for m in smtp_sink.messages for r in m.rcpt_tos) == emails[:2]
    d = _deliveries(c, send_id)[2]
    assert d.status == "suppressed" and d.error == "not eligible at send time: opted_out"


def test_paused_and_cancelled_sends_are_not_sent(container: Container, smtp_settings: Settings, smtp_sink: Any) -> None:
    c = _container(container, smtp_settings)
    paused_id, _ = _make_send(c, 2)
    cancelled_id, _ = _make_send(c, 2)
    draft_id, _ = _make_send(c, 2, status=0)
    with c.transaction() as session:
        paused, cancelled = session.get(SingleSend, paused_id), session.get(SingleSend, cancelled_id)
        assert paused is not None and cancelled is not None
        paused.paused, cancelled.cancelled = True, True
    started = time.monotonic()
    run_until_completed(c, paused_id, until=lambda: time.monotonic() - started > 0.8)
    assert smtp_sink.messages == []
    for send_id in (paused_id, cancelled_id, draft_id):
        assert {d.status for d in _deliveries(c, send_id)} == {"queued"}
        assert _send_status(c, send_id) != STATUS_COMPLETED


def test_two_workers_on_postgresql_never_send_twice(
    container: Container, smtp_settings: Settings, smtp_sink: Any
) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("concurrent workers share PostgreSQL (SQLite serialises claims in one writer)")
    one = _container(container, smtp_settings, delivery_batch_size=15)
    two = dataclasses.replace(Container.build(one.settings), settings=one.settings)
    try:
        send_id, emails = _make_send(one, 300)
        asyncio.run(_run_workers([one, two], send_id))
    finally:
        two.engine.dispose()
    counts = Counter(r for m in smtp_sink.messages for r in m.rcpt_tos)
    assert sorted(counts) == sorted(emails) and set(counts.values()) == {1}
    owners_seen = {d.status for d in _deliveries(one, send_id)}
    assert owners_seen == {"sent"}


def _herald_worker(settings: Settings, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": settings.database_url,
        "HERALD_SMTP_URL": settings.smtp_url,
        "HERALD_SECRET_KEY": settings.secret_key or "",
        "HERALD_BASE_URL": settings.public_base_url(),
        "HERALD_DATA_DIR": str(data_dir),
        "HERALD_DELIVERY_BATCH_SIZE": "50",
        "HERALD_DELIVERY_LEASE_SECONDS": "2",
        "HERALD_WORKER_POLL_SECONDS": "0.1",
    }
    herald = Path(sys.executable).parent / "herald"
    return subprocess.Popen([str(herald), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_worker_killed_mid_send_loses_nobody(
    container: Container, smtp_settings: Settings, smtp_sink: Any, tmp_path: Path
) -> None:
    send_id, emails = _make_send(container, 1500)
    first = _herald_worker(smtp_settings, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(smtp_sink.messages) < 100:
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.monotonic() < deadline, "the worker sent nothing"
            time.sleep(0.01)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        if first.stderr:
            first.stderr.close()
    at_kill = len(smtp_sink.messages)
    assert at_kill < len(emails), "the worker finished before it could be killed"
    second = _herald_worker(smtp_settings, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while _send_status(container, send_id) != STATUS_COMPLETED:
            assert second.poll() is None
            assert time.monotonic() < deadline, "the restarted worker did not finish the send"
            time.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
        if second.stderr:
            second.stderr.close()
    counts = Counter(r for m in smtp_sink.messages for r in m.rcpt_tos)
    assert set(counts) == set(emails)  # every recipient received at least one
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= 50, f"{duplicates} duplicates, more than one batch"
    print(f"killed after {at_kill} messages; duplicates after restart: {duplicates}")
    with container.sessions() as session:
        statuses = dict(
            session.execute(
                select(Delivery.status, func.count()).where(Delivery.send_id == send_id).group_by(Delivery.status)
            ).all()
        )
    assert statuses == {"sent": len(emails)}


class _CountingTransport:
    """Accepts every message and notes, at each one, how many accepted messages are not yet recorded as sent."""

    def __init__(self, container: Container, send_id: int) -> None:
        self.container, self.send_id = container, send_id
        self.accepted: list[str] = []
        self.most_unrecorded = 0

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        with self.container.sessions() as session:
            recorded = session.scalar(
                select(func.count()).where(Delivery.send_id == self.send_id, Delivery.status == "sent")
            )
        self.accepted.append(recipient)
        self.most_unrecorded = max(self.most_unrecorded, len(self.accepted) - int(recorded or 0))
        await asyncio.sleep(0.001)  # on the wire for a moment, so write-backs overlap the sending

    async def close(self) -> None:
        """Nothing to release."""


def test_write_backs_overlap_sending_but_never_more_than_a_batch_is_unrecorded(
    container: Container, settings: Settings
) -> None:
    """Each half batch is written while the next half is sent; a crash could still re-send one batch at most."""
    batch = 10
    c = _container(container, settings, delivery_batch_size=batch)
    send_id, emails = _make_send(c, 65)
    transport = _CountingTransport(c, send_id)

    async def go() -> None:
        worker = Worker(c, name="counting")
        pipeline.state_of(worker).transport = transport
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 60
        while await asyncio.to_thread(_send_status, c, send_id) != STATUS_COMPLETED:
            assert time.monotonic() < deadline, "the send did not complete in time"
            await asyncio.sleep(0.05)
        worker.stop()
        await task

    asyncio.run(go())
    assert sorted(transport.accepted) == sorted(emails)
    assert {d.status for d in _deliveries(c, send_id)} == {"sent"}
    assert batch // 2 < transport.most_unrecorded <= batch
