"""Memory flat in audience size: peak RSS of a `herald worker` process sending one send to N recipients.

    python bench/memory.py [-n 20000 200000] [--pool 8] [--db sqlite|pg|ADMIN_URL]

For each N: a scratch database is filled with one running send and N queued deliveries (the same
personalised, tracked ~5 KB HTML send as bench/send_throughput.py), then a real `herald worker` subprocess
sends it into Postfix's smtp-sink. When the send is completed, the worker's peak RSS is read from
/proc/<pid>/status (VmHWM) before it is stopped. Prints one JSON line per N, then one with the ratio of the
largest N's peak to the smallest's (target: within 1.2 x and under 200 MB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from herald.container import Container
from herald.db.migrate import upgrade
from herald.sends.models import STATUS_COMPLETED, Delivery, SingleSend
from herald.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_settings, emit, ensure_apt, scratch_db  # noqa: E402
from send_throughput import prepare, start_sink  # noqa: E402


def proc_status(pid: int) -> dict[str, int]:
    """The kB figures of /proc/<pid>/status (VmHWM is the peak resident set)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            out[key] = int(value.split()[0])
    return out


def herald_exe() -> str:
    """The `herald` console script of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "herald"
    return str(beside) if beside.exists() else (shutil.which("herald") or "herald")


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment a `herald worker` subprocess reads its settings from."""
    env = dict(os.environ)
    env.update(
        HERALD_DATABASE_URL=settings.database_url,
        HERALD_SMTP_URL=settings.smtp_url,
        HERALD_DATA_DIR=str(settings.data_dir),
        HERALD_SECRET_KEY=settings.secret_key or "bench",
        HERALD_BASE_URL=settings.base_url or "https://herald.example",
        HERALD_WORKER_POLL_SECONDS=str(settings.worker_poll_seconds),
    )
    return env


def wait_completed(container: Container, send_id: int, procs: list[subprocess.Popen[bytes]]) -> float:
    """Seconds until the send is completed (polled every 50 ms); fails if a worker dies first."""
    started = time.perf_counter()
    while True:
        with container.sessions() as session:
            status = session.scalar(select(SingleSend.status).where(SingleSend.id == send_id))
        if status == STATUS_COMPLETED:
            return time.perf_counter() - started
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"worker {proc.pid} exited with {proc.returncode}")
        time.sleep(0.05)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (the worker's graceful stop), then SIGKILL after 10 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_one(n: int, *, db: str, port: int, pool: int) -> dict[str, object]:
    """Prepare a send to n recipients, let one worker process send it, return its peak RSS."""
    tmp = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    with scratch_db("sqlite" if db == "sqlite" else db) as url:
        settings = bench_settings(url, port=port, pool=pool, data_dir=tmp)
        container = Container.build(settings)
        try:
            upgrade(container.engine)
            t0 = time.perf_counter()
            send_id = prepare(container, n)
            prepare_s = time.perf_counter() - t0
            # The worker logs to stderr: to a file, so a full pipe never blocks it.
            log = (tmp / "worker.log").open("wb")
            worker = subprocess.Popen([herald_exe(), "worker"], env=worker_env(settings), stdout=log, stderr=log)
            try:
                elapsed = wait_completed(container, send_id, [worker])
                mem = proc_status(worker.pid)
            finally:
                stop([worker])
                log.close()
            with container.sessions() as session:
                sent = session.scalar(
                    select(func.count()).where(Delivery.send_id == send_id, Delivery.status == "sent")
                )
        finally:
            container.engine.dispose()
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "n": n,
        "sent": sent,
        "peak_rss_mb": round(mem["VmHWM"] / 1024, 1),
        "rss_at_completion_mb": round(mem["VmRSS"] / 1024, 1),
        "send_seconds": round(elapsed, 1),
        "msgs_per_s": round(n / elapsed, 1),
        "prepare_seconds": round(prepare_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, nargs="+", default=[20000, 200000])
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--db", default="sqlite")
    args = parser.parse_args()
    ensure_apt("smtp-sink", "postfix")
    sink, port, sink_name = start_sink("smtp-sink")
    db_name = "sqlite" if args.db == "sqlite" else "postgresql"
    try:
        results = []
        for n in args.n:
            result = run_one(n, db=args.db, port=port, pool=args.pool)
            results.append(result)
            emit({"bench": "memory", "db": db_name, "sink": sink_name, "pool": args.pool, **result})
        if len(results) > 1:
            small, large = min(results, key=lambda r: r["n"]), max(results, key=lambda r: r["n"])
            emit(
                {
                    "bench": "memory",
                    "db": db_name,
                    "small_n": small["n"],
                    "large_n": large["n"],
                    "ratio": round(float(large["peak_rss_mb"]) / float(small["peak_rss_mb"]), 3),  # type: ignore[arg-type]
                }
            )
    finally:
        sink.kill()
        sink.wait()


if __name__ == "__main__":
    main()
