"""GNU Mailman 3 side by side: one post to a list of N members vs Herald's single send to the same N, same sink.

    python bench/mailman_compare.py [-n 5000] [--pool 8] [--db sqlite|pg|ADMIN_URL] [--bulk] [--out-instances 1]

In one run: GNU Mailman 3 core (pinned below) is installed with pip into a venv of its own (created on first
use under ~/.cache/herald-bench, or `--venv`), never into Herald's; a scratch var dir gets a mailman.cfg
(bench/mailman/mailman.cfg.in) whose [mta] points at this script's counting SMTP sink on loopback, and a list
with N members (bench/mailman/setup_list.py, Mailman's own Python API). Mailman's runners are started
(`master`), a one-member warm-up list's post shows the whole path is up, then the clock runs from the post of
one message to the list over LMTP (as an MTA hands it over) until the sink has accepted all N recipients. The
list is personalised (full personalisation with a VERP envelope sender per member: each member gets their own
message, as Herald does); `--bulk` also times Mailman's default bulk mode (one copy per `max_recipients` RCPTs,
default 10), reported as such. Mailman is stopped, then Herald's worker sends its single send (built by
bench/send_throughput.py's `prepare`, timed by its `herald_run`) to the same N addresses into the same sink.
The message posted to Mailman is one of Herald's own rendered messages for this send (~15.7 KB), so both
systems carry the same bytes. Also printed for context: the bare aiosmtplib floor with those bytes over 1
connection (what Mailman uses for a post) and over `--pool` connections (what Herald uses).

The sink is a small asyncio SMTP server in its own process (uvloop when installed) that counts the messages
and recipients of every completed DATA; it answers `XCNT` with both counts. Besides the rates, each side's CPU
time per message is reported (all Mailman processes from /proc; Herald's worker process): on a shared machine
it is steadier than wall time, since it leaves out the waiting for a core. Subscribing N members through
Mailman's API is slow (~2.5 min for 20,000) and untimed: the var dir is cached beside the venv (`--fresh`
redoes it). Prints one JSON line (and Mailman's half on stderr as soon as it is known).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_settings, emit, free_port, load, scratch_db, serve_sink, use_uvloop, wait_port  # noqa: E402

MAILMAN_VERSION = "3.3.10"
TEMPLATES = Path(__file__).parent / "mailman"
LIST = "bench@lists.example"
WARMUP = "warmup@lists.example"  # made by setup_list.py beside LIST
POSTER = "news@shop.example"


def note(message: str) -> None:
    """Progress on stderr (stdout carries only the JSON line)."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def die_with_parent() -> None:
    """Run in a child before exec: it gets SIGTERM when this script dies, even by SIGKILL (Linux prctl)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --- the counting sink -------------------------------------------------------------------------------------


@contextmanager
def counting_sink() -> Iterator[int]:
    """The sink in a process of its own (its CPU is not charged to either system), killed afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-sink", str(port)], preexec_fn=die_with_parent)
    try:
        wait_port(port)
        yield port
    finally:
        proc.kill()
        proc.wait()


class SinkProbe:
    """One control connection to the sink, kept open while a post is polled every 20 ms."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: socket.socket | None = None

    def counts(self) -> tuple[int, int, int]:
        """(messages, recipients) the sink has accepted so far, and the size of the last message."""
        for attempt in range(3):
            try:
                if self.conn is None:
                    # A generous timeout: on this shared machine the sink once went 5 s without an answer.
                    self.conn = socket.create_connection(("127.0.0.1", self.port), timeout=60)
                    self.replies = self.conn.makefile("rb")
                    self.replies.readline()
                self.conn.sendall(b"XCNT\r\n")
                _, messages, recipients, size = self.replies.readline().split()
                return int(messages), int(recipients), int(size)
            except (OSError, ValueError) as error:
                note(f"sink probe: {error!r}, reconnecting")
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the control connection."""
        if self.conn is not None:
            self.replies.close()
            self.conn.close()
            self.conn = None


def sink_counts(port: int) -> tuple[int, int, int]:
    """A one-off probe of the sink's counts."""
    probe = SinkProbe(port)
    try:
        return probe.counts()
    finally:
        probe.close()


# --- Mailman ------------------------------------------------------------------------------------------------


def ensure_mailman(venv: Path) -> Path:
    """Mailman's own venv with the pinned version, created (pip install) when missing or another version."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('mailman'))"]
    if python.exists() and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == MAILMAN_VERSION:
        return venv
    note(f"installing mailman=={MAILMAN_VERSION} into {venv}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"mailman=={MAILMAN_VERSION}"], check=True)
    return venv


@dataclass
class Mailman:
    """A running Mailman: its venv, config file, var dir and LMTP port."""

    venv: Path
    config: Path
    var_dir: Path
    lmtp_port: int
    setup_seconds: float
    pgid: int = 0  # the master's process group: master and every runner

    def cpu_seconds(self) -> float:
        """CPU time used so far by Mailman's master and runners (all in one process group), from /proc."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[2]) == self.pgid:  # pgrp; utime and stime are the 12th and 13th after the name
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def set_mode(self, mode: str) -> None:
        """Switch the lists between personalised and bulk delivery (read from the database per post)."""
        self._setup("mode", LIST, mode)

    def _setup(self, *args: str) -> None:
        script = str(TEMPLATES / "setup_list.py")
        subprocess.run([str(self.venv / "bin" / "python"), script, str(self.config), *args], check=True)

    def diagnose(self) -> str:
        """What is stuck where: non-empty queue directories and the tail of Mailman's logs."""
        queues = {q.name: len(list(q.iterdir())) for q in (self.var_dir / "queue").iterdir() if q.is_dir()}
        tails = []
        for name in ("mailman.log", "smtp.log"):
            log = self.var_dir / "logs" / name
            if log.exists():
                tails.append(f"--- {name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return f"queues: { {k: v for k, v in queues.items() if v} }\n" + "\n".join(tails)


def stop_group(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM to Mailman's master and its runners (one process group), SIGKILL whatever is left after grace."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        # The runners are the master's children in its group; any that outlived it go too.
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@contextmanager
def running_mailman(
    venv: Path, *, n: int, mode: str, sink_port: int, out_instances: int, max_recipients: int, fresh: bool = False
) -> Iterator[Mailman]:
    """A scratch Mailman with the bench list and its runners started; everything stopped and removed after."""
    tmp = Path(tempfile.mkdtemp(prefix="mailman-bench-"))
    config = tmp / "mailman.cfg"
    lmtp_port = free_port()
    config.write_text(
        Template((TEMPLATES / "mailman.cfg.in").read_text()).substitute(
            var_dir=tmp / "var",
            smtp_port=sink_port,
            lmtp_port=lmtp_port,
            rest_port=free_port(),
            out_instances=out_instances,
            max_recipients=max_recipients,
        )
    )
    log = (tmp / "master.out").open("wb")
    master: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        mailman = Mailman(venv, config, tmp / "var", lmtp_port, 0.0)
        # Subscribing through Mailman's API runs at ~100 members/s here (a minute for 5,000, untimed but
        # long): the var dir right after set-up is kept beside the venv and copied on later runs.
        script = (TEMPLATES / "setup_list.py").read_bytes()
        key = hashlib.sha256(script + f"{MAILMAN_VERSION} {n} {mode}".encode()).hexdigest()[:12]
        cached = venv.parent / "mailman-var" / f"{n}-{mode}-{key}"
        if cached.is_dir() and not fresh:
            shutil.copytree(cached, mailman.var_dir)
        else:
            mailman._setup("create", LIST, str(n), mode)
            # Copied aside and renamed, so an interrupted copy is never taken for a complete cache.
            partial = cached.with_name(cached.name + f".{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(mailman.var_dir, partial)
            shutil.rmtree(cached, ignore_errors=True)
            partial.rename(cached)
        mailman.setup_seconds = time.perf_counter() - started
        # Its own process group, so the runners it forks are stopped with it even if this script fails.
        master = subprocess.Popen(
            [str(venv / "bin" / "master"), "-C", str(config), "--force"],
            stdout=log,
            stderr=log,
            start_new_session=True,
            # SIGTERM is the master's own shutdown (it stops its runners), also if this script is killed.
            preexec_fn=die_with_parent,
        )
        mailman.pgid = master.pid
        wait_port(lmtp_port, timeout=60)
        note(f"mailman: list of {n} set up in {mailman.setup_seconds:.1f} s, runners started")
        yield mailman
    finally:
        if master is not None:
            stop_group(master)
            note("mailman: runners stopped")
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def post_for_mailman(herald_message: bytes) -> bytes:
    """Herald's rendered message, re-addressed as a post to the list (Mailman adds its own List-* headers)."""
    head, body = herald_message.split(b"\r\n\r\n", 1)
    drop = (b"to:", b"message-id:", b"list-unsubscribe", b"x-herald-")
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.lower().startswith(drop)
        if not skipping:
            kept.append(line)
    kept += [f"To: {LIST}".encode(), f"Message-ID: <{uuid.uuid4().hex}@shop.example>".encode()]
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


def time_post(
    mailman: Mailman, *, sink_port: int, to: str, message: bytes, expect: int, timeout: float
) -> dict[str, float]:
    """Post over LMTP; seconds until the sink has accepted `expect` more recipients, and what it counted."""
    probe = SinkProbe(sink_port)
    messages_before, recipients_before, _ = probe.counts()
    cpu_before = mailman.cpu_seconds()
    started = time.perf_counter()
    with smtplib.LMTP("127.0.0.1", mailman.lmtp_port) as lmtp:
        lmtp.sendmail(POSTER, [to], message)
    first: float | None = None
    while True:
        messages, recipients, size = probe.counts()
        if first is None and recipients > recipients_before:
            # Everything before the first delivery is the in and pipeline runners (moderation chain, the
            # recipient list read member by member): Herald's counterpart, materialising the deliveries,
            # happens before its clock starts (bench/send_throughput.py's prepare).
            first = time.perf_counter()
        if recipients - recipients_before >= expect:
            break
        if time.perf_counter() - started > timeout:
            raise SystemExit(
                f"Mailman delivered {recipients - recipients_before} of {expect} in {timeout:.0f} s\n"
                + mailman.diagnose()
            )
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    cpu = mailman.cpu_seconds() - cpu_before
    probe.close()
    note(f"mailman: {to} delivered to {expect} in {elapsed:.2f} s")
    first = started if first is None else first
    return {
        "seconds": round(elapsed, 2),
        "msgs_per_s": round(expect / elapsed, 1),
        "first_delivery_seconds": round(first - started, 2),
        "delivery_phase_msgs_per_s": round((expect - 1) / max(elapsed - (first - started), 1e-3), 1),
        # All of Mailman's processes, idle runners' polling included: less noisy than the rate on a shared
        # machine, since it does not count time spent waiting for a core.
        "cpu_ms_per_msg": round(cpu * 1000 / expect, 3),
        "smtp_transactions": messages - messages_before,
        "recipients": recipients - recipients_before,
        "message_bytes": size,
    }


# --- the run ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--pool", type=int, default=8, help="Herald's SMTP connections")
    parser.add_argument("--db", default="sqlite", help="Herald's database (Mailman uses its default, SQLite)")
    parser.add_argument("--bulk", action="store_true", help="also time Mailman's default bulk mode")
    parser.add_argument("--out-instances", type=int, default=1, help="Mailman out runner slices (power of 2)")
    parser.add_argument("--max-recipients", type=int, default=10, help="Mailman's RCPTs per transaction, bulk")
    parser.add_argument("--timeout", type=float, default=None, help="give up on a Mailman post (default 60 + n/5 s)")
    default_venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "herald-bench"
    parser.add_argument("--venv", type=Path, default=default_venv / f"mailman-{MAILMAN_VERSION}")
    parser.add_argument("--fresh", action="store_true", help="subscribe the members again, not from the cache")
    parser.add_argument("--serve-sink", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    loop_name = use_uvloop()
    if args.serve_sink is not None:
        asyncio.run(serve_sink(args.serve_sink))
        return
    # A `kill` of this script still stops Mailman's runners and the sink (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from send_throughput import bare_loop, herald_run, prepare, sample_message

    from herald.container import Container
    from herald.db.migrate import upgrade

    # Mailman's personalised delivery ran at 20-50 msgs/s here: allow it 5/s before calling it stuck.
    timeout = args.timeout if args.timeout is not None else 60 + args.n / 5
    venv = ensure_mailman(args.venv)
    with ExitStack() as stack:
        sink_port = stack.enter_context(counting_sink())
        tmp = Path(tempfile.mkdtemp(prefix="herald-bench-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        db_url = f"sqlite:///{tmp}/herald.db" if args.db == "sqlite" else stack.enter_context(scratch_db(args.db))
        settings = bench_settings(db_url, port=sink_port, pool=args.pool, data_dir=tmp)
        container = Container.build(settings)
        stack.callback(container.engine.dispose)
        upgrade(container.engine)
        send_id = prepare(container, args.n)
        herald_message = sample_message(container, send_id)
        post = post_for_mailman(herald_message)

        result: dict[str, object] = {"bench": "mailman_compare", "n": args.n, "mailman_version": MAILMAN_VERSION}
        with running_mailman(
            venv,
            n=args.n,
            mode="personalized",
            sink_port=sink_port,
            out_instances=args.out_instances,
            max_recipients=args.max_recipients,
            fresh=args.fresh,
        ) as mailman:
            result["mailman_setup_seconds"] = round(mailman.setup_seconds, 1)
            timed = functools.partial(time_post, mailman, sink_port=sink_port, message=post, timeout=timeout)
            warm = timed(to=WARMUP, expect=1)
            result["mailman_warmup_seconds"] = warm["seconds"]
            result["load_at_mailman"] = load()
            personal = timed(to=LIST, expect=args.n)
            result["mailman_mode"] = "personalized: full personalisation, VERP per member, 1 message per member"
            result["mailman_out_instances"] = args.out_instances
            result.update({f"mailman_{k}": v for k, v in personal.items()})
            if args.bulk:
                mailman.set_mode("bulk")
                timed(to=WARMUP, expect=1)
                bulk = timed(to=LIST, expect=args.n)
                result["mailman_bulk_mode"] = f"bulk (Mailman's default): up to {args.max_recipients} RCPTs per message"
                result.update({f"mailman_bulk_{k}": v for k, v in bulk.items()})
        note("mailman results: " + json.dumps(result))  # kept even if Herald's part fails
        # Mailman's runners are gone before Herald starts: neither competes with the other for the 2 cores.
        # The floor's rate does not depend on N (pre-built bytes, no database): 5,000 messages are enough.
        floor_n = min(args.n, 5000)
        floor_one, _ = asyncio.run(bare_loop(sink_port, floor_n, 1, herald_message))
        floor_pool, _ = asyncio.run(bare_loop(sink_port, floor_n, args.pool, herald_message))
        result["load_at_herald"] = load()
        before = sink_counts(sink_port)[1]
        note("herald: sending")
        elapsed, herald_cpu = asyncio.run(herald_run(container, send_id))
        herald_recipients = sink_counts(sink_port)[1] - before
        herald_rate = args.n / elapsed
        mailman_rate = float(personal["msgs_per_s"])
        result.update(
            {
                "herald_db": "sqlite" if args.db == "sqlite" else "postgresql",
                "herald_pool": args.pool,
                "herald_seconds": round(elapsed, 2),
                "herald_msgs_per_s": round(herald_rate, 1),
                "herald_cpu_ms_per_msg": round(herald_cpu * 1000 / args.n, 3),
                "herald_recipients": herald_recipients,
                "cpu_per_msg_mailman_to_herald": round(
                    float(personal["cpu_ms_per_msg"]) / (herald_cpu * 1000 / args.n), 1
                ),
                "ratio_herald_to_mailman": round(herald_rate / mailman_rate, 2),
                # Against Mailman's out runner alone (from its first delivery), leaving out the recipient
                # calculation that Herald did before its clock started.
                "ratio_herald_to_mailman_delivery_phase": round(
                    herald_rate / float(personal["delivery_phase_msgs_per_s"]), 2
                ),
                "message_bytes": len(herald_message),
                "floor_1conn_msgs_per_s": round(floor_one, 1),
                f"floor_{args.pool}conn_msgs_per_s": round(floor_pool, 1),
                "loop": loop_name,
            }
        )
        if args.bulk:
            result["ratio_herald_to_mailman_bulk"] = round(herald_rate / float(bulk["msgs_per_s"]), 2)
        emit(result)


if __name__ == "__main__":
    main()
