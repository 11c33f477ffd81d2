"""The inbound SMTP listener: real SMTP conversations (smtplib) carrying DSNs, ARF reports and unsubscribes."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from herald.container import Container
from herald.inbound.smtp import InboundListener
from herald.worker import Worker
from tests.conftest import free_port
from tests.inbound import samples
from tests.public.factories import Mailed, mail, make_account_row, make_topic


@pytest.fixture
def listener(container: Container) -> Iterator[InboundListener]:
    server = InboundListener(container, host="127.0.0.1", port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def m(container: Container) -> Mailed:
    return mail(container, make_account_row(container))


def _send(port: int, raw: bytes, rcpt: str = "bounces@herald.test") -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.example.net")
        assert client.mail("")[0] == 250
        assert client.rcpt(rcpt)[0] == 250
        return client.data(raw)


def test_hard_bounce_over_smtp(listener: InboundListener, m: Mailed) -> None:
    code, reply = _send(listener.port, samples.hard_bounce(f"<{m.token}@herald.test>", m.email))
    assert code == 250 and b"hard_bounce" in reply
    assert m.status() == "bounced" and [e.kind for e in m.events()] == ["bounce"]


def test_soft_bounce_over_smtp(listener: InboundListener, m: Mailed) -> None:
    code, reply = _send(listener.port, samples.soft_bounce(f"<{m.token}@herald.test>", m.email))
    assert code == 250 and b"soft_bounce" in reply
    assert m.status() == "opted_in" and [e.kind for e in m.events()] == ["soft_bounce"]


def test_complaint_over_smtp(listener: InboundListener, m: Mailed) -> None:
    code, reply = _send(listener.port, samples.complaint(f"<{m.token}@herald.test>", m.email), "fbl@herald.test")
    assert code == 250 and b"complaint" in reply
    assert m.status() == "spam_reported"


def test_mailto_unsubscribe_over_smtp(listener: InboundListener, container: Container, m: Mailed) -> None:
    raw = f"From: {m.email}\r\nTo: unsubscribe+{m.token}@herald.test\r\nSubject: unsubscribe\r\n\r\n".encode()
    code, reply = _send(listener.port, raw, f"unsubscribe+{m.token}@herald.test")
    assert code == 250 and b"unsubscribe" in reply
    assert m.status() == "opted_out" and m.ledger()[-1].source == "inbound"


def test_oversize_message_is_refused(container: Container, m: Mailed) -> None:
    small = dataclasses.replace(container, settings=container.settings.model_copy(update={"max_body_bytes": 1024}))
    server = InboundListener(small, host="127.0.0.1", port=free_port()).start()
    try:
        code, _ = _send(server.port, samples.soft_bounce(f"<{m.token}@herald.test>", m.email) + b"x" * 4096)
        assert code == 552
    finally:
        server.stop()
    assert m.events() == []


def _wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_worker_starts_and_stops_the_listener(container: Container) -> None:
    port = free_port()
    configured = dataclasses.replace(
        container, settings=container.settings.model_copy(update={"inbound_smtp_port": port, "host": "127.0.0.1"})
    )
    account_id = make_account_row(container)
    topic = make_topic(container, account_id, "News")
    m = mail(container, account_id, topic_id=topic)
    loop = asyncio.new_event_loop()
    worker = Worker(configured, name="inbound-test")
    thread = threading.Thread(target=loop.run_until_complete, args=(worker.run(),), daemon=True)
    thread.start()
    try:
        _wait_for_port(port)
        code, _ = _send(port, samples.hard_bounce(f"<{m.token}@herald.test>", m.email))
        assert code == 250 and m.status() == "bounced"
    finally:
        loop.call_soon_threadsafe(worker.stop)
        thread.join(timeout=15)
        loop.close()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the listener outlived its worker"


def test_forged_bounce_naming_only_the_address_changes_nothing_over_smtp(listener: InboundListener, m: Mailed) -> None:
    """The SMTP listener has no authentication: a DSN that names the recipient but not Herald's Message-ID or
    delivery token could be forged by anyone, so it is stored as unmatched and the address keeps its state."""
    code, reply = _send(listener.port, samples.hard_bounce("<made-up-id@attacker.example>", m.email))
    assert code == 250 and b"unmatched" in reply
    assert m.status() == "opted_in" and m.events() == []
