"""Shared helpers for the benchmark scripts: scratch databases, load average, result lines."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from herald.db.engine import normalise_url
from herald.settings import Settings

PG_ADMIN = os.environ.get("HERALD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def load() -> str:
    """The 1/5/15-minute load average, reported with every figure (the machine is shared)."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def machine() -> dict[str, Any]:
    """What a figure was measured on."""
    return {"nproc": os.cpu_count(), "load": load(), "date": time.strftime("%Y-%m-%d %H:%M")}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (from /proc), or None once it is gone or not ours."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def emit(result: dict[str, Any]) -> None:
    """One JSON line per measurement, with the machine it was taken on."""
    print(json.dumps({**result, **machine()}), flush=True)


def free_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def ensure_apt(binary: str, package: str) -> str:
    """Path of a Debian-packaged tool, installing the package if it is missing."""
    found = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", package], check=True, stdout=subprocess.DEVNULL)
    found = shutil.which(binary) or f"/usr/sbin/{binary}"
    if not Path(found).exists():
        raise SystemExit(f"{binary} not found after installing {package}")
    return found


@contextmanager
def scratch_db(kind: str) -> Iterator[str]:
    """A fresh database URL (a temp SQLite file or a new PostgreSQL database), removed afterwards."""
    if kind == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="herald-bench-"))
        try:
            yield f"sqlite:///{tmp}/herald.db"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    admin_url = PG_ADMIN if kind in ("pg", "postgresql") else kind
    name = f"herald_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_settings(database_url: str, *, port: int, pool: int, data_dir: Path, **extra: Any) -> Settings:
    """Herald's settings for a benchmark run: the given database, the sink on `port` with `pool` connections."""
    return Settings(
        database_url=database_url,
        smtp_url=f"smtp://127.0.0.1:{port}?pool={pool}",
        data_dir=data_dir,
        secret_key="bench",
        base_url="https://herald.example",
        worker_poll_seconds=0.05,
        **extra,
    )


def use_uvloop() -> str:
    """Install uvloop as the event loop policy when it is installed (as `herald serve` does); the loop's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    uvloop.install()
    return "uvloop"


async def serve_sink(port: int, *, delay: float = 0.0) -> None:
    """Just enough SMTP for aiosmtplib and Mailman: EHLO, MAIL, RCPT, DATA (answered after `delay`), RSET, QUIT,
    and XCNT, which answers '250 <messages> <recipients> <last message's bytes>' (counted once a whole message
    is in, as an MTA acknowledges it)."""
    delivered = [0, 0, 0]

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        rcpts = 0
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
                elif verb in (b"MAIL", b"RSET"):
                    rcpts = 0
                    writer.write(b"250 OK\r\n")
                elif verb == b"RCPT":
                    rcpts += 1
                    writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    data = await reader.readuntil(b"\r\n.\r\n")
                    if delay:
                        await asyncio.sleep(delay)
                    delivered[0] += 1
                    delivered[1] += rcpts
                    delivered[2] = len(data) - 3
                    rcpts = 0
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"XCNT":
                    writer.write("250 {} {} {}\r\n".format(*delivered).encode())
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", port, limit=2**24)
    async with server:
        await server.serve_forever()
