"""The inbound SMTP listener (aiosmtpd): bounces, complaints and mailto unsubscribes arriving as mail.

Point the MX (or a transport map) of the bounce/unsubscribe domain at it. Started by the worker when
HERALD_INBOUND_SMTP_PORT is set, on HERALD_HOST. Every message goes through the same InboundService as
POST /inbound/messages. A database failure answers 451 so the sending server retries later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from herald.container import Container
from herald.inbound.service import InboundService

log = logging.getLogger("herald.inbound.smtp")


class InboundHandler:
    """aiosmtpd handler: accepts every recipient, applies each message in a worker thread."""

    def __init__(self, container: Container) -> None:
        self.container = container

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """Accept any recipient: bounce and unsubscribe addresses are many (VERP-style local parts)."""
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Apply the message; 250 whatever Herald made of it, 451 when it could not be stored."""
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        rcpts = [str(r) for r in envelope.rcpt_tos]
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(None, self._receive, bytes(raw), rcpts)
        except Exception:
            log.exception("inbound message could not be processed")
            return "451 4.3.0 Temporary failure, please try again later"
        return f"250 2.0.0 Accepted ({outcome})"

    def _receive(self, raw: bytes, rcpts: list[str]) -> str:
        with self.container.transaction() as session:
            service = InboundService(session, self.container.signer, hash_key=self.container.hash_key)
            return service.receive(raw, envelope_recipients=rcpts, match_by_recipient=False).outcome


class InboundListener:
    """An aiosmtpd server in its own thread, bound to one host and port."""

    def __init__(self, container: Container, *, host: str, port: int) -> None:
        settings = container.settings
        self.controller: Any = Controller(
            InboundHandler(container),
            hostname=host,
            port=port,
            server_hostname="herald-inbound",
            ident="Herald inbound",
            data_size_limit=settings.max_body_bytes,
            enable_SMTPUTF8=True,
        )

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.controller.port)

    def start(self) -> InboundListener:
        """Bind and start serving (raises when the port cannot be bound)."""
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.controller.stop()


async def start_listener(container: Container) -> InboundListener | None:
    """Start the listener when HERALD_INBOUND_SMTP_PORT is set; a bind failure is logged, never fatal."""
    settings = container.settings
    if not settings.inbound_smtp_port:
        return None
    listener = InboundListener(container, host=settings.host, port=settings.inbound_smtp_port)
    try:
        await asyncio.to_thread(listener.start)
    except Exception:
        log.exception("inbound SMTP listener could not start on %s:%s", settings.host, settings.inbound_smtp_port)
        return None
    log.info("inbound SMTP listener on %s:%s", settings.host, listener.port)
    return listener


async def stop_listener(listener: InboundListener | None) -> None:
    """Stop a listener started by start_listener (None is fine)."""
    if listener is not None:
        await asyncio.to_thread(listener.stop)
