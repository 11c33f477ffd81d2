"""A real SMTP server for tests (aiosmtpd), recording every message and able to refuse on cue."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    """One message as the sink got it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """The parsed message."""
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class SinkHandler:
    """Stores messages; `refuse` maps a recipient to an SMTP reply; `temporary_failures` 4xx the next N."""

    messages: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    temporary_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any) -> str:
        with self.lock:
            if self.temporary_failures > 0:
                self.temporary_failures -= 1
                return "451 4.3.0 try again later"
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.lock:
            self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content)))
        return "250 Message accepted"


class SmtpSink:
    """An aiosmtpd server on a loopback port."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        from tests.conftest import free_port

        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port())

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def url(self) -> str:
        """A HERALD_SMTP_URL pointing here."""
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def to(self, address: str) -> list[Received]:
        """Messages delivered to one recipient."""
        return [m for m in self.messages if address.lower() in [r.lower() for r in m.rcpt_tos]]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Block until at least `count` messages arrived (or fail the test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.messages
            if len(msgs) >= count:
                return msgs
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages, the sink got {len(self.messages)}")
