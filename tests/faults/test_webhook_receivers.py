"""Webhook and Skycore postback receivers that are down, then refuse, then time out, across a Herald restart."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from herald.container import Container
from herald.jobs.models import Job
from herald.jobs.service import DEFAULT_BACKOFF
from herald.webhooks.delivery import SKYCORE_BACKOFF, sign
from herald.webhooks.models import Webhook
from herald.webhooks.outbox import SKYCORE_JOB, emit
from tests.conftest import free_port, make_account
from tests.faults.harness import spawn_worker, wait_until

SCALE = 0.002  # job_retry_scale: native retries after 0.01, 0.06, 0.24, 1.2, 3.6, 7.2 s; Skycore every 0.6 s
TIMEOUT = 0.5  # webhook_timeout_seconds
SLOW = 2.0  # how long the slow receiver takes to answer (longer than TIMEOUT)
SECRET = "hook-secret"
SUBSCRIBERS = ["ann@example.org", "bob@example.org", "cy@example.org"]
SLACK = 2.0  # scheduling lag allowed on a loaded machine (poll interval, claim, process start-up)
# A worker runs the jobs it claimed one after another, so a retry can also wait behind the other five
# subscribers' first events, each of which may spend TIMEOUT on the slow receiver (head-of-line blocking).
QUEUED_BEHIND = 5 * TIMEOUT


@dataclass(frozen=True)
class Hit:
    """One request the receiver got."""

    at: float
    mode: str
    n: int
    email: str
    signed: bool


class Receiver:
    """A real HTTP receiver on a loopback port: not listening at first, then refuse (503), slow, or accept."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "refuse"
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = receiver.mode
                signature = self.headers.get("Herald-Signature")
                if body.startswith(b"{"):
                    data = json.loads(body)["data"]
                    n, email = int(data["list_id"]), str(data["email"])
                else:
                    found = dict(re.findall(r"<(EMAIL|CAMPAIGNID)>([^<]*)<", body.decode()))
                    n, email = int(found["CAMPAIGNID"]), found["EMAIL"]
                with receiver.lock:
                    receiver.hits.append(Hit(time.monotonic(), mode, n, email, signature == sign(SECRET, body)))
                if mode == "slow":
                    time.sleep(SLOW)  # Herald gave up after its timeout: this answer reaches nobody
                try:
                    self.send_response(503 if mode == "refuse" else 200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a slow answer to a client that left

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def seen(self, mode: str | None = None) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if mode is None or h.mode == mode]


def _emit_round(container: Container, account_id: int, first_n: int) -> int:
    """One event per subscriber, each in its own transaction; `list_id` carries a global sequence number."""
    n = first_n
    for email in SUBSCRIBERS:
        event = "list.subscribed" if n % 2 else "list.unsubscribed"
        with container.transaction() as session:
            emit(session, account_id, event, {"email": email, "list_id": n})
        n += 1
    return n


def _jobs(container: Container) -> list[Job]:
    with container.sessions() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def _heads_seen(receiver: Receiver, mode: str, at_least: int) -> bool:
    """Each subscriber's first event was seen `at_least` times in `mode`."""
    hits = receiver.seen(mode)
    return all(sum(1 for h in hits if h.n == head) >= at_least for head in (1, 2, 3))


def test_webhook_and_postback_receivers_down_refusing_slow_events_retried_on_schedule_in_order_none_lost_across_restart(
    pg_container: Container, tmp_path: Path
) -> None:
    account_id = make_account(pg_container)["account_id"]
    native, skycore = Receiver(), Receiver()
    events = ["list.subscribed", "list.unsubscribed"]
    with pg_container.transaction() as session:
        secret = pg_container.cipher.encrypt(SECRET)
        session.add_all(
            [
                Webhook(account_id=account_id, url=native.url("/hook"), events=events, secret_enc=secret),
                Webhook(
                    account_id=account_id,
                    url=skycore.url("/postback"),
                    events=events,
                    format="skycore",
                    secret_enc=secret,
                ),
            ]
        )
    n = 1
    for _ in range(3):
        n = _emit_round(pg_container, account_id, n)
    tuning = {"job_retry_scale": SCALE, "webhook_timeout_seconds": TIMEOUT}
    first = spawn_worker(pg_container.settings, tmp_path, "first", **tuning)
    second = None
    try:
        _drive_receivers(pg_container, native, skycore)
        first.stop()  # Herald goes away with every event still undelivered
        stopped_at = time.monotonic()
        pending = _jobs(pg_container)
        assert {j.status for j in pending} == {"pending"}, "a stopped worker left jobs claimed"
        n = _emit_round(pg_container, account_id, n)  # events keep coming while Herald is down
        native.mode = skycore.mode = "accept"
        second = spawn_worker(pg_container.settings, tmp_path, "second", **tuning)
        wait_until(
            lambda: {j.status for j in _jobs(pg_container)} == {"done"},
            timeout=45,
            what="every event delivered after the restart",
            poll=0.1,
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()
        native.stop(), skycore.stop()

    jobs = _jobs(pg_container)
    emitted = {email: [i for i in range(1, n) if SUBSCRIBERS[(i - 1) % 3] == email] for email in SUBSCRIBERS}
    report = []
    for label, receiver, kind_is_skycore in (("webhook", native, False), ("postback", skycore, True)):
        accepted = receiver.seen("accept")
        per_subscriber = {email: [h.n for h in accepted if h.email == email] for email in SUBSCRIBERS}
        assert per_subscriber == emitted, f"{label}: delivered out of order, lost or twice"
        assert all(h.signed for h in receiver.seen()) or kind_is_skycore
        gaps = _check_schedule(receiver, [j for j in jobs if (j.kind == SKYCORE_JOB) == kind_is_skycore], stopped_at)
        report.append(
            f"{label}: {len(receiver.seen())} requests ({len(receiver.seen('refuse'))} refused with 503, "
            f"{len(receiver.seen('slow'))} timed out, {len(accepted)} accepted of {n - 1} events); "
            f"{gaps} retry gaps on schedule"
        )
    print("\n" + "\n".join(report))
    assert len(jobs) == 2 * (n - 1)


def _drive_receivers(container: Container, native: Receiver, skycore: Receiver) -> None:
    """Each receiver on its own: down until its first events failed once, then 503s, then too slow to answer.

    Native webhooks see two 503s (their backoff grows fast); Skycore postbacks one (they have only 6 tries).
    """
    refusals = {id(native): 2, id(skycore): 1}
    deadline = time.monotonic() + 40
    while not (_heads_seen(native, "slow", 1) and _heads_seen(skycore, "slow", 1)):
        assert time.monotonic() < deadline, f"receivers saw {native.seen()} and {skycore.seen()}"
        jobs = _jobs(container)
        for receiver, is_skycore in ((native, False), (skycore, True)):
            heads = [j for j in jobs if (j.kind == SKYCORE_JOB) == is_skycore and j.payload["data"]["list_id"] <= 3]
            if receiver.server is None:
                if all(j.attempts >= 1 and j.status == "pending" for j in heads):
                    receiver.start()  # every first event has failed against the absent receiver
            elif receiver.mode == "refuse" and _heads_seen(receiver, "refuse", refusals[id(receiver)]):
                receiver.mode = "slow"
        time.sleep(0.02)


def _check_schedule(receiver: Receiver, jobs: list[Job], stopped_at: float) -> int:
    """Each retry came no sooner than its scheduled backoff, and (before the restart) not much later."""
    checked = 0
    for job in jobs:
        number = int(job.payload["data"]["list_id"])
        hits = [h for h in receiver.seen() if h.n == number]
        schedule = SKYCORE_BACKOFF if job.kind == SKYCORE_JOB else DEFAULT_BACKOFF
        first_seen = job.attempts - len(hits) + 1  # attempts before the receiver listened were refused unseen
        for i, (before, after) in enumerate(zip(hits, hits[1:], strict=False)):
            attempt = first_seen + i
            delay = schedule[min(attempt, len(schedule)) - 1] * SCALE
            took = TIMEOUT if before.mode == "slow" else 0.0
            gap = after.at - before.at
            assert gap >= delay + took - 0.05, f"event {number} attempt {attempt + 1} came {gap:.2f} s after, early"
            if after.at < stopped_at:
                assert gap <= delay * 1.2 + took + QUEUED_BEHIND + SLACK, (
                    f"event {number} attempt {attempt + 1} late: {gap:.2f} s"
                )
            checked += 1
    assert checked >= 6
    return checked
