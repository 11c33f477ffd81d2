"""Transports against a real SMTP conversation and a real maildir."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.delivery.transport import (
    MaildirTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    parse_smtp_url,
    transport_from_url,
    wire_form,
)

MSG = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def test_parse_smtp_url() -> None:
    cfg = parse_smtp_url("smtp://u%40x:p%3Aw@relay.local:2525?starttls=1&pool=4&rate=10")
    assert (cfg.host, cfg.port, cfg.username, cfg.password, cfg.starttls, cfg.pool, cfg.rate) == (
        "relay.local",
        2525,
        "u@x",
        "p:w",
        True,
        4,
        10.0,
    )
    with pytest.raises(ValueError):
        transport_from_url("http://nope")


def test_smtp_pool_sends_over_persistent_connections(smtp_sink: Any) -> None:
    transport = SmtpTransport(parse_smtp_url(smtp_sink.url + "?pool=2"))

    async def go() -> None:
        await asyncio.gather(*(transport.send("a@example.com", f"r{i}@example.com", MSG) for i in range(10)))
        await transport.close()

    asyncio.run(go())
    assert len(smtp_sink.wait_for(10)) == 10
    assert smtp_sink.to("r3@example.com")[0].message["Subject"] == "hi"


def test_smtp_5xx_is_permanent_and_4xx_temporary(smtp_sink: Any) -> None:
    smtp_sink.handler.refuse["gone@example.com"] = "550 5.1.1 no such user"
    transport = SmtpTransport(parse_smtp_url(smtp_sink.url))

    async def go() -> None:
        with pytest.raises(PermanentFailure) as err:
            await transport.send("a@example.com", "gone@example.com", MSG)
        assert err.value.code == 550
        smtp_sink.handler.temporary_failures = 1
        with pytest.raises(TemporaryFailure):
            await transport.send("a@example.com", "later@example.com", MSG)
        await transport.send("a@example.com", "later@example.com", MSG)
        await transport.close()

    asyncio.run(go())
    assert len(smtp_sink.to("later@example.com")) == 1


def test_relay_down_is_temporary() -> None:
    from tests.conftest import free_port

    transport = SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}?timeout=2"))
    with pytest.raises(TemporaryFailure):
        asyncio.run(transport.send("a@example.com", "b@example.com", MSG))


def test_maildir_writes_one_file_per_message(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "outbox")
    asyncio.run(transport.send("a@example.com", "b@example.com", MSG))
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 1 and b"Subject: hi" in files[0].read_bytes()
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []


class _SizeRecorder:
    """A sink handler keeping each message with the MAIL parameters it came with."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.mail_options), bytes(envelope.original_content or b"")))
        return "250 OK"


def test_size_is_the_octets_data_carries_and_dots_are_stuffed() -> None:
    """SIZE (RFC 1870) counts CRLF line ends and the final CRLF, also for a message written with bare LF."""
    from aiosmtpd.controller import Controller
    from aiosmtplib.protocol import normalize_message_line_endings

    from tests.conftest import free_port

    handler = _SizeRecorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    crlf = MSG + b".leading dot\r\n..two dots"  # no final CRLF
    bare = b"From: a@example.com\nSubject: lf\n\nline one\r\n.dot\rlast\n"
    try:
        transport = SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{controller.port}?pool=1"))

        async def go() -> None:
            for message in (crlf, bare):
                await transport.send("a@example.com", "b@example.com", message)
            await transport.close()

        asyncio.run(go())
    finally:
        controller.stop()
    assert [opts for opts, _ in handler.received] == [
        [f"SIZE={len(normalize_message_line_endings(m))}"] for m in (crlf, bare)
    ]
    # The server un-stuffs what wire_form() stuffed: the lines arrive as written.
    assert handler.received[0][1].endswith(b"\r\n.leading dot\r\n..two dots\r\n")


def test_a_refused_or_unsendable_recipient_leaves_the_connection_usable(smtp_sink: Any) -> None:
    """After a 5xx, a 4xx or an address aiosmtplib refuses, the envelope is reset and the one connection goes on."""
    smtp_sink.handler.refuse["gone@example.com"] = "550 5.1.1 no such user"
    transport = SmtpTransport(parse_smtp_url(smtp_sink.url + "?pool=1"))

    async def go() -> list[Any]:
        outcomes: list[Any] = []
        for recipient in ("gone@example.com", "bad\x7f@example.com", "later@example.com", "ok@example.com"):
            if recipient == "later@example.com":
                smtp_sink.handler.temporary_failures = 1
            try:
                await transport.send("a@example.com", recipient, MSG)
                outcomes.append("sent")
            except (PermanentFailure, TemporaryFailure, ValueError) as exc:
                outcomes.append(type(exc).__name__)
        clients = list(transport._idle._queue) if transport._idle else []  # type: ignore[attr-defined]
        outcomes.append(len(clients))
        await transport.close()
        return outcomes

    assert asyncio.run(go()) == ["PermanentFailure", "ValueError", "TemporaryFailure", "sent", 1]
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["ok@example.com"]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"..", b" ", b"\xc2\xb7"]), max_size=40))
def test_wire_form_is_what_aiosmtplib_data_would_send(parts: list[bytes]) -> None:
    """The bytes Herald writes after DATA equal aiosmtplib's own encoding of the same message, for any input."""
    from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

    message = b"".join(parts)
    wire, size = wire_form(message)
    normalised = normalize_message_line_endings(message)
    assert wire == PERIOD_REGEX.sub(b"..", normalised)
    assert size == len(normalised)


class _ContentRefuser(_SizeRecorder):
    """Accepts the envelope, then refuses the content of every message whose body says so."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if b"refuse me" in (envelope.original_content or b""):
            return "554 5.7.1 content rejected"
        return await super().handle_DATA(server, session, envelope)


def test_content_refused_after_data_is_permanent_and_the_connection_goes_on() -> None:
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    handler = _ContentRefuser()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        transport = SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{controller.port}?pool=1"))

        async def go() -> int:
            with pytest.raises(PermanentFailure) as err:
                await transport.send("a@example.com", "b@example.com", MSG + b"refuse me\r\n")
            await transport.send("a@example.com", "c@example.com", MSG)
            connections = len(transport._idle._queue) if transport._idle else 0  # type: ignore[attr-defined]
            await transport.close()
            assert err.value.code == 554
            return connections

        assert asyncio.run(go()) == 1
    finally:
        controller.stop()
    assert [content for _, content in handler.received] == [MSG]


def test_data_refused_before_the_content_is_temporary_and_nothing_is_written() -> None:
    """A relay answering DATA with 4xx instead of 354: no content goes over the wire, the envelope is reset."""
    seen: list[bytes] = []
    finished = asyncio.Event()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 scripted\r\n")
        replies = {b"EHLO": b"250 scripted\r\n", b"MAIL": b"250 ok\r\n", b"RCPT": b"250 ok\r\n"}
        replies |= {b"DATA": b"452 4.3.1 out of storage\r\n", b"RSET": b"250 ok\r\n", b"QUIT": b"221 bye\r\n"}
        while line := await reader.readline():
            seen.append(line)
            writer.write(replies.get(line[:4].upper(), b"500 what\r\n"))
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        finished.set()

    async def go() -> None:
        finished.clear()
        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{port}?pool=1"))
        with pytest.raises(TemporaryFailure, match="452"):
            await transport.send("a@example.com", "b@example.com", MSG)
        await transport.close()
        await finished.wait()
        server.close()
        await server.wait_closed()

    asyncio.run(go())
    assert [line.split(b" ")[0].strip() for line in seen] == [b"EHLO", b"MAIL", b"RCPT", b"DATA", b"RSET", b"QUIT"]
