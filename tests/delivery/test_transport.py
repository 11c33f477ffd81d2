"""Transports against a real SMTP conversation and a real maildir."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from herald.delivery.transport import (
    MaildirTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    parse_smtp_url,
    transport_from_url,
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
