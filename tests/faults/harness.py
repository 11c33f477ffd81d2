"""What the fault tests share: bulk sends on PostgreSQL, `herald worker` subprocesses, a relay that misbehaves."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, insert, select, text

from herald.consent.models import Address
from herald.contacts.models import Contact
from herald.container import Container
from herald.db.base import utcnow
from herald.sends import pipeline
from herald.sends.models import STATUS_RUNNING, Delivery, SingleSend
from herald.settings import Settings
from herald.worker import Worker
from tests.conftest import free_port, make_account
from tests.sends.factory import sender_and_send

HTML = '<html><body><h1>Hello ((first_name|friend))</h1><a href="https://shop.example/sale">Sale</a></body></html>'


@dataclass
class BulkSend:
    """A running send with one queued delivery per recipient."""

    send_id: int
    account: dict[str, Any]
    emails: list[str]


def bulk_send(container: Container, n: int) -> BulkSend:
    """A running send to `n` fresh addresses, written set-based (PostgreSQL only: 20,000 rows in a second or two)."""
    account = make_account(container, f"acct-{uuid.uuid4().hex[:6]}")
    account_id = account["account_id"]
    emails = [f"r{i:05d}@example.org" for i in range(n)]
    now = utcnow()
    with container.transaction() as session:
        send = sender_and_send(
            session,
            account_id,
            name="Fault test",
            subject="Hi ((first_name|there))",
            template_html=HTML,
            status=STATUS_RUNNING,
        )
        base = {"account_id": account_id, "created_at": now, "updated_at": now}
        session.execute(insert(Address), [{**base, "email": e, "status": "unknown"} for e in emails])
        session.execute(
            insert(Contact), [{**base, "email": e, "first_name": f"N{i}", "fields": {}} for i, e in enumerate(emails)]
        )
        session.execute(
            text(
                "INSERT INTO deliveries (account_id, send_id, address_id, contact_id, email, token, status, attempts)"
                " SELECT a.account_id, :send_id, a.id, c.id, a.email, md5(random()::text || a.id::text), 'queued', 0"
                " FROM addresses a JOIN contacts c ON c.account_id = a.account_id AND c.email = a.email"
                " WHERE a.account_id = :account_id ORDER BY a.email"
            ),
            {"send_id": send.id, "account_id": account_id},
        )
        return BulkSend(send.id, account, emails)


def delivery_statuses(container: Container, send_id: int) -> dict[str, int]:
    """How many deliveries of the send are in each status."""
    with container.sessions() as session:
        rows = session.execute(
            select(Delivery.status, func.count()).where(Delivery.send_id == send_id).group_by(Delivery.status)
        )
        return {status: int(count) for status, count in rows}


def send_status(container: Container, send_id: int) -> int:
    """The send's lifecycle status."""
    with container.sessions() as session:
        return int(session.scalar(select(SingleSend.status).where(SingleSend.id == send_id)) or 0)


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll until `condition()` holds, failing the test after `timeout` seconds with `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


# -- `herald worker` subprocesses ----------------------------------------------------------------------
@dataclass
class WorkerProcess:
    """One `herald worker` process with its log file."""

    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def name(self) -> str:
        """The lease owner name the worker uses (host:pid)."""
        return f"{socket.gethostname()}:{self.proc.pid}"

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the worker's log, for failure messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as if the machine died."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM: the worker finishes its tick and exits (killed if it does not)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"worker did not stop within {timeout} s:\n{self.log_tail()}") from None


def spawn_worker(settings: Settings, folder: Path, label: str, **overrides: object) -> WorkerProcess:
    """Start `herald worker` on the test's database and relay; `overrides` are settings (e.g. delivery_batch_size)."""
    values: dict[str, object] = {
        "database_url": settings.database_url,
        "smtp_url": settings.smtp_url,
        "secret_key": settings.secret_key or "",
        "base_url": settings.public_base_url(),
        "data_dir": folder / "data",
        "worker_poll_seconds": 0.05,
        **overrides,
    }
    env = {**os.environ, **{f"HERALD_{key.upper()}": str(value) for key, value in values.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"worker-{label}.log"
    herald = Path(sys.executable).parent / "herald"
    # The log goes to a file: a pipe nobody reads would block the worker once it fills (an outage logs a lot).
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(herald), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
    return WorkerProcess(proc, log)


# -- an SMTP relay that can be down, refuse for a while, or refuse some recipients for good -------------
@dataclass
class RelayHandler:
    """Records every RCPT attempt and every accepted message; 4xx until `tempfail_until`, 5xx for `refuse`."""

    tempfail_until: float = 0.0
    refuse: dict[str, str] = field(default_factory=dict)
    rcpt_attempts: Counter[str] = field(default_factory=Counter)
    rcpt_times: dict[str, list[float]] = field(default_factory=dict)
    delivered: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any) -> str:
        address = address.lower()
        with self.lock:
            self.rcpt_attempts[address] += 1
            self.rcpt_times.setdefault(address, []).append(time.monotonic())
        if address in self.refuse:
            return self.refuse[address]
        if time.monotonic() < self.tempfail_until:
            return "451 4.3.0 relay busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.delivered.update(str(r).lower() for r in envelope.rcpt_tos)
        return "250 Message accepted"


class Relay:
    """An aiosmtpd relay on a fixed loopback port, so it can be absent first and come up later on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = RelayHandler()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        """HERALD_SMTP_URL for this relay."""
        return f"smtp://127.0.0.1:{self.port}?timeout=10"

    def start(self) -> Relay:
        """Start listening."""
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop listening (if started)."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def delivered(self) -> Counter[str]:
        """Messages accepted per recipient."""
        with self.handler.lock:
            return Counter(self.handler.delivered)

    def rcpt_attempts(self) -> Counter[str]:
        """RCPT commands seen per recipient (accepted or not)."""
        with self.handler.lock:
            return Counter(self.handler.rcpt_attempts)


# -- an in-process worker loop (for tests that need no separate process) -----------------------------
@contextmanager
def worker_thread(container: Container, **overrides: object) -> Iterator[Worker]:
    """Run a real Worker loop in a thread on `container` with settings `overrides`; stop it on exit."""
    c = dataclasses.replace(container, settings=container.settings.model_copy(update=overrides))
    worker = Worker(c, name=f"fault-{uuid.uuid4().hex[:8]}")
    loop = asyncio.new_event_loop()

    def run() -> None:
        try:
            loop.run_until_complete(worker.run())
            loop.run_until_complete(pipeline.close(worker))
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        loop.call_soon_threadsafe(worker.stop)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker loop did not stop"
