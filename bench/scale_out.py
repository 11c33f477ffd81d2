"""Scale-out: 1 vs 2 `herald worker` processes on PostgreSQL against a sink that adds latency per message.

    python bench/scale_out.py [-n 6000] [--pool 8] [--delay-ms 20] [--db pg|ADMIN_URL]

A remote relay's round trip, not Herald's CPU, is what bounds a real send; this sink (a small asyncio SMTP
server in its own process, uvloop when installed) waits `--delay-ms` before answering each DATA. Postfix's
smtp-sink has `-w delay`, but only in whole seconds. For each worker count, a fresh scratch PostgreSQL
database gets one running send with N queued deliveries (as bench/send_throughput.py builds them) while the
`herald worker` processes are already up and idle; the clock runs from that commit to status completed.
The floor is the sink's own ceiling per worker: pool / delay messages per second. Prints one JSON line per
worker count, then one with the ratio (target: 2 workers >= 1.8 x one).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from herald.container import Container
from herald.db.migrate import upgrade
from herald.sends.models import Delivery

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_settings, emit, free_port, scratch_db, serve_sink, use_uvloop, wait_port  # noqa: E402
from memory import herald_exe, stop, wait_completed, worker_env  # noqa: E402
from send_throughput import prepare  # noqa: E402


def start_delay_sink(delay_ms: float) -> tuple[subprocess.Popen[bytes], int]:
    """This script's sink, in a process of its own so it never shares the workers' CPU accounting."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-sink", str(port), "--delay-ms", str(delay_ms)])
    wait_port(port)
    return proc, port


def run_one(workers: int, *, n: int, db: str, port: int, pool: int) -> dict[str, object]:
    """Start `workers` idle worker processes, commit a send to n recipients, time it to completed."""
    tmp = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    with scratch_db(db) as url:
        settings = bench_settings(url, port=port, pool=pool, data_dir=tmp)
        container = Container.build(settings)
        logs = [(tmp / f"worker{i}.log").open("wb") for i in range(workers)]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            upgrade(container.engine)
            procs = [
                subprocess.Popen([herald_exe(), "worker"], env=worker_env(settings), stdout=log, stderr=log)
                for log in logs
            ]
            deadline = time.monotonic() + 60
            while not all(b"started" in (tmp / f"worker{i}.log").read_bytes() for i in range(workers)):
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not start")
                time.sleep(0.1)
            send_id = prepare(container, n)
            elapsed = wait_completed(container, send_id, procs)
            with container.sessions() as session:
                sent = session.scalar(
                    select(func.count()).where(Delivery.send_id == send_id, Delivery.status == "sent")
                )
        finally:
            stop(procs)
            for log in logs:
                log.close()
            container.engine.dispose()
            shutil.rmtree(tmp, ignore_errors=True)
    return {"workers": workers, "n": n, "sent": sent, "seconds": round(elapsed, 2), "msgs_per_s": round(n / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=6000)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--db", default="pg")
    parser.add_argument("--serve-sink", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_uvloop()
    if args.serve_sink is not None:
        asyncio.run(serve_sink(args.serve_sink, delay=args.delay_ms / 1000))
        return
    sink, port = start_delay_sink(args.delay_ms)
    ceiling = args.pool / (args.delay_ms / 1000)
    try:
        rates = {}
        for workers in (1, 2):
            result = run_one(workers, n=args.n, db=args.db, port=port, pool=args.pool)
            rates[workers] = float(result["msgs_per_s"])  # type: ignore[arg-type]
            emit(
                {
                    "bench": "scale_out",
                    "db": "postgresql",
                    "pool": args.pool,
                    "delay_ms": args.delay_ms,
                    "sink_ceiling_msgs_per_s": round(ceiling * workers, 1),
                    **result,
                }
            )
        emit({"bench": "scale_out", "n": args.n, "ratio_2_to_1": round(rates[2] / rates[1], 3)})
    finally:
        sink.kill()
        sink.wait()


if __name__ == "__main__":
    main()
