"""Transports: a pool of persistent SMTP connections (aiosmtplib) and its twin, the maildir outbox.

Errors are translated here into Herald's own tree, separating what is worth retrying from what is not:

    TransportError
      TemporaryFailure   SMTP 4xx, connection refused/reset, timeouts → retry with backoff
      PermanentFailure   SMTP 5xx for a recipient → hard bounce, never retried
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings
from aiosmtplib.typing import SMTPStatus


class TransportError(Exception):
    """A message could not be handed over."""


class TemporaryFailure(TransportError):
    """Worth retrying later (4xx, relay down, timeout)."""


class PermanentFailure(TransportError):
    """Never worth retrying (5xx): the recipient is a hard bounce."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Transport(Protocol):
    """Hands one finished message (bytes) to the next hop."""

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Deliver or raise TemporaryFailure / PermanentFailure."""

    async def close(self) -> None:
        """Release connections."""


class MaildirTransport:
    """Writes every message as a file in a maildir's new/ folder (the embedded default; the UI shows it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Write the message atomically (tmp/ then rename into new/), as maildir readers expect."""
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.{socket.gethostname()}"
        envelope = f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode()
        tmp = self.path / "tmp" / name
        await asyncio.to_thread(_write_then_rename, tmp, self.path / "new" / name, envelope + message)

    async def close(self) -> None:
        """Nothing to release."""


def _write_then_rename(tmp: Path, final: Path, data: bytes) -> None:
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


@dataclass(frozen=True)
class SmtpConfig:
    """What `smtp://[user:pass@]host:port[?starttls=1&pool=N&rate=N&timeout=S]` says."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    pool: int = 8
    rate: float | None = None
    timeout: float = 30.0


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse HERALD_SMTP_URL's smtp form."""
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    return SmtpConfig(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 25,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        starttls=query.get("starttls", "0") in ("1", "true", "yes"),
        pool=max(1, int(query.get("pool", "8"))),
        rate=float(query["rate"]) if query.get("rate") else None,
        timeout=float(query.get("timeout", "30")),
    )


class RateLimiter:
    """At most `rate` messages a second across the pool (a simple spacing limiter)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        """Sleep until the next message may go."""
        async with self.lock:
            now = time.monotonic()
            if self.next_at > now:
                await asyncio.sleep(self.next_at - now)
            self.next_at = max(now, self.next_at) + self.interval


class SmtpTransport:
    """A pool of persistent SMTP connections; each connection is used by one sender at a time."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._limiter = RateLimiter(config.rate) if config.rate else None

    def _ensure_pool(self) -> tuple[asyncio.LifoQueue[aiosmtplib.SMTP], asyncio.Semaphore]:
        if self._idle is None or self._slots is None:
            self._idle = asyncio.LifoQueue()
            self._slots = asyncio.Semaphore(self.config.pool)
        return self._idle, self._slots

    async def _connect(self) -> aiosmtplib.SMTP:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=cfg.timeout, start_tls=cfg.starttls, use_tls=False
        )
        try:
            await client.connect()
            if cfg.username and cfg.password:
                await client.login(cfg.username, cfg.password)
            if client.is_ehlo_or_helo_needed:  # greet now: whether SIZE is offered is known before MAIL
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise TemporaryFailure(f"cannot connect to SMTP relay {cfg.host}:{cfg.port}: {exc}") from exc
        return client

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Send over a pooled connection; a dropped connection is replaced once before giving up."""
        idle, slots = self._ensure_pool()
        if self._limiter:
            await self._limiter.wait()
        async with slots:
            client = idle.get_nowait() if not idle.empty() else await self._connect()
            keep = True
            try:
                await _transaction(client, sender, recipient, message)
            except aiosmtplib.SMTPResponseException as exc:
                # MAIL, RCPT or DATA refused: reset the envelope so the connection can carry the next message.
                keep = await _reset(client)
                raise _by_code(exc.code, exc.message) from exc
            except ValueError:  # an address aiosmtplib will not put on the wire: nothing sent for it
                keep = await _reset(client)
                raise
            except (aiosmtplib.SMTPException, OSError) as exc:
                keep = False
                raise TemporaryFailure(f"SMTP connection failed: {exc}") from exc
            finally:
                if keep and client.is_connected:
                    idle.put_nowait(client)
                else:
                    client.close()

    async def close(self) -> None:
        """QUIT every idle connection."""
        if self._idle is None:
            return
        while not self._idle.empty():
            client = self._idle.get_nowait()
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


async def _transaction(client: aiosmtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """One mail transaction for one recipient: MAIL (with SIZE when offered), RCPT, DATA.

    What `SMTP.sendmail` does for a single recipient, minus its per-byte work that Herald's messages do not
    need: sendmail runs aiosmtplib's line-ending regex over the whole ~16 KB message once to compute SIZE,
    and `data()` runs it again plus a second regex for dot-stuffing (together ≈ 30 % of the event loop's
    time per message in the send benchmark). The message is put in wire form once here instead
    (`wire_form`): a check that costs a few memchr-speed scans when, as for every rendered message, it is
    CRLF throughout.
    """
    wire, size = wire_form(message)
    options = [f"SIZE={size}"] if client.supports_extension("size") else []
    await client.mail(sender, options=options)
    await client.rcpt(recipient)
    await _data(client, wire)


async def _data(client: aiosmtplib.SMTP, wire: bytes) -> None:
    """DATA for a message already in wire form: the `data()` conversation without re-encoding the bytes.

    Only public pieces of aiosmtplib: `execute_command` for DATA and 354, then the protocol's `write` and
    `read_response` for the content and its reply. No await lies between the write and `read_response`, so
    the reply cannot arrive before the protocol expects it; a connection is used by one sender at a time
    (the pool), so no other command can interleave. Failures raise what `data()` raises.
    """
    start = await client.execute_command(b"DATA")
    if start.code != SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    protocol.write(wire + b".\r\n")
    try:
        reply = await protocol.read_response(timeout=client.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()  # as data() does: the conversation is out of step
        raise
    if reply.code != SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """RSET after a refusal, as sendmail does; False when the connection is no longer fit for reuse."""
    try:
        await client.rset()
    except aiosmtplib.SMTPResponseException:
        return True  # the server answered: the conversation is still in step
    except (aiosmtplib.SMTPException, OSError):
        return False
    return True


def wire_form(message: bytes) -> tuple[bytes, int]:
    """The octets DATA carries before its final "." (CRLF line ends, a final CRLF, leading dots doubled),
    and the message's SIZE (RFC 1870: the same octets before the dots are doubled).

    The same bytes as aiosmtplib's `data()` sends (RFC 5321 4.5.2 transparency). Herald's rendered
    messages are CRLF already, which three counts prove; only other input goes through aiosmtplib's own
    line-ending normaliser.
    """
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:  # bare CR or LF (EmailMessage.as_bytes)
        message = normalize_message_line_endings(message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    size = len(message)
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n.."), size


def _by_code(code: int, text: str) -> TransportError:
    if 500 <= code < 600:
        return PermanentFailure(f"{code} {text}", code=code)
    return TemporaryFailure(f"{code} {text}")


def transport_from_url(url: str) -> MaildirTransport | SmtpTransport:
    """The transport HERALD_SMTP_URL names: `maildir:PATH` or `smtp://…`."""
    if url.startswith("maildir:"):
        return MaildirTransport(Path(url.split(":", 1)[1]))
    if url.startswith("smtp://"):
        return SmtpTransport(parse_smtp_url(url))
    raise ValueError(f"HERALD_SMTP_URL must start with maildir: or smtp://, not {url!r}")
