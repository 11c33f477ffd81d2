"""CONTRACT.md's send promise as written: `herald serve` with its defaults, SQLite, N personalised messages.

    python bench/contract_send.py [-n 5000] [--repeat 3] [--sink auto|smtp-sink|aiosmtpd]

Everything goes through Herald's real entry points: `herald account create --json`, `herald contacts import`
of an N-row CSV, then `herald serve` (no flag but the port; HERALD_SMTP_URL naming the sink, so the pool is
its default of 8) and the native API for the contact type, the sender and the ~5 KB template. Timed, per
repeat: from the `POST /api/v1/single-sends` call that creates a send to go now (`schedule_type` 0) until
the send's `completed_at` (read through `GET /api/v1/single-sends/{id}`), i.e. API, launch, materialisation
and the in-process worker's sending. The floor, before and after each repeat: a bare aiosmtplib
`sendmail` loop over the same number of connections (8) to the same sink, sending pre-built bytes: Herald's
own rendered message for this send (taken from a draft with the same content) and, for comparison, a 5 KB
message. One JSON line per repeat, with the CPU seconds `herald serve` used (its /proc entry).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
from common import cpu_seconds, emit, free_port, use_uvloop, wait_port  # noqa: E402
from send_throughput import HTML, SMALL, bare_loop, sample_message, start_sink  # noqa: E402

from herald.container import Container  # noqa: E402
from herald.sends.models import Delivery  # noqa: E402
from herald.settings import Settings  # noqa: E402

POOL = 8  # HERALD_SMTP_URL's default pool size: the floor uses as many connections


def herald(env: dict[str, str], *args: str) -> str:
    """Run the `herald` CLI; its stdout."""
    done = subprocess.run([sys.executable, "-m", "herald", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"herald {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def setup(client: httpx.Client, env: dict[str, str], tmp: Path, n: int, account_id: int) -> dict[str, Any]:
    """Contact type, N contacts (CSV import), sender and template: the create call's body."""
    type_id = client.post("/api/v1/contact-types", json={"name": "customers"}).json()["id"]
    sender_id = client.post(
        "/api/v1/senders", json={"from_email": "news@shop.example", "from_name": "Shop", "address": "1 Main St"}
    ).json()["id"]
    template_id = client.post("/api/v1/templates", json={"name": "sale", "html": HTML}).json()["id"]
    path = tmp / "contacts.csv"
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["email", "first_name", "city", "contact_type_id"])
        out.writerows([f"r{i}@example.org", f"N{i}", "Berlin", type_id] for i in range(n))
    herald(env, "contacts", "import", str(path), "--account", str(account_id))
    return {
        "template_id": template_id,
        "sender_id": sender_id,
        "single_send_name": "Sale",
        "subject": "Hello ((first_name)), the sale is on",
        "recipient_id": [f"contacts_{type_id}"],
    }


def timed_send(client: httpx.Client, body: dict[str, Any]) -> tuple[int, float]:
    """The send's id and the seconds from its create call to the completion time the send records.

    The end is the send's own `completed_at` (set in the transaction that records its last batch; the same
    clock), so the status can be polled rarely: a GET every 20 ms computed the send's stats 50 times a second
    on the server the benchmark measures.
    """
    started = datetime.now(UTC)
    created = client.post("/api/v1/single-sends", json={**body, "schedule_type": 0})
    if created.status_code not in (200, 201):
        raise SystemExit(f"create failed: {created.status_code} {created.text}")
    url = f"/api/v1/single-sends/{created.json()['id']}"
    while (send := client.get(url).json())["status"] != 3:
        if (datetime.now(UTC) - started).total_seconds() > 600:
            raise SystemExit(f"not completed after 600 s: {send}")
        time.sleep(0.25)
    completed = datetime.fromisoformat(send["completed_at"])
    if completed.tzinfo is None:
        completed = completed.replace(tzinfo=UTC)
    return int(created.json()["id"]), (completed - started).total_seconds()


def sent_count(container: Container, send_id: int) -> int:
    """How many of the send's deliveries are recorded as sent."""
    with container.sessions() as session:
        stmt = select(func.count()).where(Delivery.send_id == send_id, Delivery.status == "sent")
        return int(session.scalar(stmt) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sink", default="auto", choices=["auto", "smtp-sink", "aiosmtpd"])
    args = parser.parse_args()
    use_uvloop()
    sink, sink_port, sink_name = start_sink(args.sink)
    tmp = Path(tempfile.mkdtemp(prefix="herald-contract-"))
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": f"sqlite:///{tmp}/herald.db",
        "HERALD_SMTP_URL": f"smtp://127.0.0.1:{sink_port}",
        "HERALD_DATA_DIR": str(tmp),
        "HERALD_SECRET_KEY": "contract-bench",
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        herald(env, "migrate")
        account = json.loads(herald(env, "account", "create", "bench", "--json"))
        port = free_port()
        log = (tmp / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "herald", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        wait_port(port, timeout=60)
        headers = {"Authorization": f"Bearer {account['api_token']}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            body = setup(client, env, tmp, args.n, account["account_id"])
            draft = client.post("/api/v1/single-sends", json=body).json()["id"]
            settings = Settings(database_url=env["HERALD_DATABASE_URL"], secret_key=env["HERALD_SECRET_KEY"])
            container = Container.build(settings)
            own = sample_message(container, draft)
            floors = [asyncio.run(bare_loop(sink_port, args.n, POOL, m))[0] for m in (own, SMALL)]
            for repeat in range(args.repeat):
                cpu_before = cpu_seconds(server.pid) or 0.0
                send_id, elapsed = timed_send(client, body)
                cpu = (cpu_seconds(server.pid) or 0.0) - cpu_before
                if (sent := sent_count(container, send_id)) != args.n:
                    raise SystemExit(f"send {send_id} completed with {sent} of {args.n} messages sent")
                after = [asyncio.run(bare_loop(sink_port, args.n, POOL, m))[0] for m in (own, SMALL)]
                floor, floor_5kb = ((a + b) / 2 for a, b in zip(floors, after, strict=True))
                rate = args.n / elapsed
                emit(
                    {
                        "bench": "contract_send",
                        "n": args.n,
                        "repeat": repeat + 1,
                        "sink": sink_name,
                        "message_bytes": len(own),
                        "seconds": round(elapsed, 2),
                        "herald_msgs_per_s": round(rate, 1),
                        "floor_msgs_per_s": round(floor, 1),
                        "ratio": round(rate / floor, 3),
                        "floor_5kb_msgs_per_s": round(floor_5kb, 1),
                        "ratio_to_5kb_floor": round(rate / floor_5kb, 3),
                        "serve_cpu_us_per_msg": round(cpu / args.n * 1e6),
                    }
                )
                floors = after
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        sink.kill()
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
