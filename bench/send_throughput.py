"""Send throughput: Herald's worker from `running` to `completed` vs a bare aiosmtplib loop, same sink, same run.

    python bench/send_throughput.py [-n 5000] [--pool 8] [--db sqlite|pg|ADMIN_URL] [--repeat 1] [--floor-n 20000]
                                    [--sink auto|smtp-sink|aiosmtpd] [--dkim KEY.pem]

The sink is Postfix's smtp-sink when installed (`apt-get install -y postfix`), else an aiosmtpd server in a
subprocess. Herald renders N personalised messages from a ~5 KB HTML body (merge tags, click tracking, open
pixel, List-Unsubscribe; ~15.7 KB on the wire with the text part and base64) from leased batches and sends
them through a pool of `--pool` connections. The floor sends one of those rendered messages, pre-built, with
`SMTP.sendmail` over the same number of persistent connections, before and after each Herald run (at most
`--floor-n` messages: its rate does not depend on N). `--repeat` re-queues the same deliveries and runs
Herald again. One JSON line per Herald run: both rates and their ratio, and the CPU time of this process per
message for both (steadier than rates when other jobs share the machine), with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import aiosmtplib
from sqlalchemy import insert, select, update

from herald.accounts.service import AccountService
from herald.consent.models import Address
from herald.contacts.models import Contact
from herald.container import Container
from herald.db.base import utcnow
from herald.db.migrate import upgrade
from herald.security import new_hex
from herald.sends.models import STATUS_COMPLETED, STATUS_RUNNING, Delivery, SingleSend
from herald.templates.models import Sender
from herald.worker import Worker, settle_heap

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_settings, scratch_db, use_uvloop  # noqa: E402

PARAGRAPH = (
    "<p style='margin:0 0 12px'>Dear ((first_name|customer)), our spring collection is here. Browse the "
    "<a href='https://shop.example/new?c=spring'>new arrivals</a> or visit your nearest store in ((city|town)). "
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.</p>\n"
)
HTML = (
    "<html><head><style>body{font-family:Arial} h1{color:#333} .btn{background:#06c;color:#fff}</style></head>"
    "<body><h1>Hello ((first_name))</h1>\n"
    + PARAGRAPH
    * 16
    + "<a class='btn' href='https://shop.example/sale'>Shop now</a>\n"
    "<p>((sender_name)), ((sender_address)) · <a href='((unsubscribe_preferences))'>Preferences</a></p>"
    "</body></html>"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(kind: str) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    exe = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None)
    if kind == "smtp-sink" and exe is None:
        raise SystemExit("smtp-sink not found: apt-get install -y postfix")
    if kind != "aiosmtpd" and exe is not None:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        proc = subprocess.Popen([exe, *user, "-c", f"127.0.0.1:{port}", "1024"], stdout=subprocess.DEVNULL)
        name = "postfix smtp-sink"
    else:
        code = (
            "import asyncio,sys;from aiosmtpd.controller import Controller\n"
            "class H:\n async def handle_DATA(self,s,se,e): return '250 OK'\n"
            f"c=Controller(H(),hostname='127.0.0.1',port={port});c.start()\n"
            "import time\nwhile True: time.sleep(3600)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code])
        name = "aiosmtpd (subprocess)"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, name
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the sink did not start")


SMALL = ("Subject: hi\r\nFrom: news@shop.example\r\nTo: x@example.org\r\n\r\n" + ("y" * 76 + "\r\n") * 66).encode()


def sample_message(container: Container, send_id: int) -> bytes:
    """One of Herald's own messages for this send, rendered once: the floor sends these very bytes.

    The ~5 KB HTML becomes a ~15 KB multipart message (text part, tracked links, base64 for the
    non-ASCII middle dot); aiosmtplib's per-byte work (line-ending regex, dot-stuffing, the socket write)
    is a third of the send time, so a floor sending 5 KB measures message size, not Herald.
    """
    from herald.delivery.render import compile_message
    from herald.delivery.repository import DeliveryRepository
    from herald.sends.pipeline import message_spec

    base = container.settings.public_base_url()
    with container.sessions() as session:
        info = DeliveryRepository(session).send_infos({send_id})[send_id]
    compiled = compile_message(message_spec(info, base), base_url=base, signer=container.signer)
    return compiled.render(email="r0@example.org", token="0" * 64, values={"first_name": "N0", "city": "Berlin"})


async def bare_loop(port: int, n: int, pool: int, message: bytes) -> tuple[float, float]:
    """The floor: pre-built bytes over `pool` persistent connections; (messages per second, CPU s per message)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def sender() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        while not queue.empty():
            i = queue.get_nowait()
            await client.sendmail("news@shop.example", [f"r{i}@example.org"], message)
        await client.quit()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(pool)))
    return n / (time.perf_counter() - started), (time.process_time() - cpu_started) / n


def prepare(container: Container, n: int) -> int:
    """An account, n contacts/addresses, a running send with n queued deliveries (bulk inserts)."""
    with container.transaction() as session:
        account_id = AccountService(session, container.cipher).create_account("bench")["account_id"]
        sender = Sender(account_id=account_id, from_email="news@shop.example", from_name="Shop", address="1 Main St")
        session.add(sender)
        session.flush()
        send = SingleSend(
            account_id=account_id,
            utr=str(uuid.uuid4()),
            name="bench",
            subject="Spring news for ((first_name|you))",
            preheader="New arrivals inside",
            template_html=HTML,
            sender_id=sender.id,
            status=STATUS_RUNNING,
        )
        session.add(send)
        session.flush()
        send_id = send.id
        emails = [f"r{i}@example.org" for i in range(n)]
        session.execute(
            insert(Contact),
            [
                {"account_id": account_id, "email": e, "first_name": f"N{i}", "city": "Berlin"}
                for i, e in enumerate(emails)
            ],
        )
        session.execute(insert(Address), [{"account_id": account_id, "email": e, "status": "opted_in"} for e in emails])
        contacts = dict(
            session.execute(select(Contact.email, Contact.id).where(Contact.account_id == account_id)).all()
        )
        addresses = dict(
            session.execute(select(Address.email, Address.id).where(Address.account_id == account_id)).all()
        )
        session.execute(
            insert(Delivery),
            [
                {
                    "account_id": account_id,
                    "send_id": send_id,
                    "address_id": addresses[e],
                    "contact_id": contacts[e],
                    "email": e,
                    "token": new_hex(32),
                    "status": "queued",
                }
                for e in emails
            ],
        )
    return send_id


async def herald_run(container: Container, send_id: int) -> tuple[float, float]:
    """Run a worker until the send is completed: (seconds, CPU seconds of this process) for the whole send."""
    # `herald serve` imports its feature modules at start-up, long before a send is created: do that
    # outside the timed window too (it took ~25 % of a 3,000-message run when it was inside).
    import herald.inbound.smtp  # noqa: F401  (Worker.run imports it when it starts, also before any send)

    settle_heap()  # as `herald worker` does before it starts

    worker = Worker(container, name="bench")
    started, cpu_started = utcnow(), time.process_time()
    task = asyncio.create_task(worker.run())

    def completed_at() -> datetime | None:
        with container.sessions() as session:
            row = session.execute(
                select(SingleSend.status, SingleSend.completed_at).where(SingleSend.id == send_id)
            ).one()
            return row.completed_at if row.status == STATUS_COMPLETED else None

    # The end is the send's own completion time (set by the write-back of its last batch), so this loop
    # can poll rarely: polling every 20 ms through the ORM took a third of the database threads' samples
    # in a py-spy profile, GIL time the worker had to share.
    while (done := await asyncio.to_thread(completed_at)) is None:
        await asyncio.sleep(0.25)
    elapsed, cpu = (done - started).total_seconds(), time.process_time() - cpu_started
    worker.stop()
    await task
    from herald.sends import pipeline

    await pipeline.close(worker)
    with container.sessions() as session:
        sent = session.scalar(select(Delivery.id).where(Delivery.send_id == send_id, Delivery.status != "sent"))
        assert sent is None, "some deliveries were not sent"
    return elapsed, cpu


def requeue(container: Container, send_id: int) -> None:
    """Put the send back as it was before its run (every delivery queued), for a repeat on the same rows."""
    with container.transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.send_id == send_id)
            .values(status="queued", attempts=0, lease_owner=None, lease_until=None, message_id=None, sent_at=None)
        )
        session.execute(
            update(SingleSend).where(SingleSend.id == send_id).values(status=STATUS_RUNNING, completed_at=None)
        )
    if container.engine.dialect.name == "postgresql":  # the previous run's row versions out of the claim index
        with container.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE deliveries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="Herald runs (each between two floors), same rows")
    parser.add_argument("--floor-n", type=int, default=20000, help="messages per floor run (at most -n)")
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--sink", default="auto", choices=["auto", "smtp-sink", "aiosmtpd"])
    parser.add_argument("--dkim", type=Path, default=None, help="PEM key: sign with DKIM (selector s1, shop.example)")
    args = parser.parse_args()
    loop_name = use_uvloop()
    sink, port, sink_name = start_sink(args.sink)
    tmp = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    scratch = ExitStack()
    # A PostgreSQL run gets a fresh database, dropped afterwards (never tables left in the admin database).
    db_url = f"sqlite:///{tmp}/herald.db" if args.db == "sqlite" else scratch.enter_context(scratch_db(args.db))
    settings = bench_settings(
        db_url,
        port=port,
        pool=args.pool,
        data_dir=tmp,
        dkim_domain="shop.example" if args.dkim else None,
        dkim_selector="s1" if args.dkim else None,
        dkim_private_key_path=args.dkim,
    )
    container = Container.build(settings)
    try:
        upgrade(container.engine)
        send_id = prepare(container, args.n)
        same = sample_message(container, send_id)
        # The floor's rate does not depend on N (pre-built bytes, no database): past --floor-n messages it
        # only costs time, which a 200,000-recipient run cannot spare three times over.
        floor_n = min(args.n, args.floor_n)
        small, _ = asyncio.run(bare_loop(port, floor_n, args.pool, SMALL))
        floor_before = asyncio.run(bare_loop(port, floor_n, args.pool, same))
        for repeat in range(args.repeat):
            if repeat:
                requeue(container, send_id)
            elapsed, cpu = asyncio.run(herald_run(container, send_id))
            herald_rate = args.n / elapsed
            floor_after = asyncio.run(bare_loop(port, floor_n, args.pool, same))
            floor_mean = (floor_before[0] + floor_after[0]) / 2
            floor_cpu = (floor_before[1] + floor_after[1]) / 2
            print(
                json.dumps(
                    {
                        "n": args.n,
                        "repeat": repeat + 1,
                        "pool": args.pool,
                        "db": "sqlite" if args.db == "sqlite" else "postgresql",
                        "sink": sink_name,
                        "loop": loop_name,
                        "dkim": bool(args.dkim),
                        "message_bytes": len(same),
                        "floor_n": floor_n,
                        "floor_msgs_per_s": round(floor_mean, 1),
                        "herald_msgs_per_s": round(herald_rate, 1),
                        "ratio": round(herald_rate / floor_mean, 3),
                        # CPU time of this process per message (Herald's includes its database threads, not the
                        # PostgreSQL server): steadier than rates when other jobs share the cores.
                        "floor_cpu_us_per_msg": round(floor_cpu * 1e6),
                        "herald_cpu_us_per_msg": round(cpu / args.n * 1e6),
                        "cpu_ratio": round(floor_cpu / (cpu / args.n), 3),
                        "floor_5kb_msgs_per_s": round(small, 1),
                        "ratio_to_5kb_floor": round(herald_rate / small, 3),
                        "load": "/".join(f"{x:.1f}" for x in os.getloadavg()),
                    }
                ),
                flush=True,
            )
            floor_before = floor_after
    finally:
        sink.kill()
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        if args.db != "sqlite":
            container.engine.dispose()
        scratch.close()


if __name__ == "__main__":
    main()
