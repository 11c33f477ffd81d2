"""Contacts import: `herald contacts import` of an n-row CSV, vs a bare COPY of the same file, same run.

    python bench/import_csv.py [-n 1000000] [--db pg|sqlite] [--no-updates]

Writes a CSV (email, first_name, last_name, city, country, one custom column) of n new contacts, creates an
account on a scratch database, then times the real CLI in a subprocess (`herald contacts import FILE
--account ID`: validation, normalisation, suppression check, contacts + addresses upserts), first into the
empty account (every row new), then the same file again (every row an update). The floor is PostgreSQL's COPY
of the same file into an unindexed table (on SQLite, executemany of the parsed rows). Prints rows/s for each
and the ratio to the floor.

The machine is shared, so each line also gives the CPU the import used: the CLI process (user + system) and,
on PostgreSQL, its server backends (sampled from /proc while it runs, so slightly under). CPU per row does not
move with other people's load the way wall time does.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import cpu_seconds, emit, scratch_db  # noqa: E402

from herald.accounts.service import AccountService  # noqa: E402
from herald.container import Container  # noqa: E402
from herald.db.migrate import upgrade  # noqa: E402
from herald.settings import Settings  # noqa: E402

HEADER = ["email", "first_name", "last_name", "city", "country", "loyalty_tier"]


def write_csv(path: Path, n: int) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(n):
            w.writerow([f"User{i}@Example.org", f"First{i}", f"Last{i}", "Berlin", "DE", ("gold", "silver")[i % 2]])


def floor(url: str, path: Path) -> float:
    """Seconds to load the raw file into an unindexed table."""
    started = time.perf_counter()
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1])
        conn.execute(
            "CREATE TABLE floor_import (email TEXT, first_name TEXT, last_name TEXT, city TEXT, "
            "country TEXT, loyalty_tier TEXT)"
        )
        with path.open(newline="") as f:
            reader = csv.reader(f)
            next(reader)
            conn.executemany("INSERT INTO floor_import VALUES (?, ?, ?, ?, ?, ?)", reader)
        conn.commit()
        conn.close()
    else:
        with psycopg.connect(url) as conn:
            conn.execute(
                "CREATE TABLE floor_import (email TEXT, first_name TEXT, last_name TEXT, city TEXT, "
                "country TEXT, loyalty_tier TEXT)"
            )
            with conn.cursor().copy("COPY floor_import FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                with path.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
    return time.perf_counter() - started


def run_cli(url: str, env: dict[str, str], path: Path, account_id: int, extra: list[str]) -> dict[str, object]:
    """Run the real CLI once; wall seconds, its last stderr line, and the CPU of the CLI and its backends."""
    args = [str(Path(sys.executable).parent / "herald"), "contacts", "import", str(path), "--account", str(account_id)]
    args += extra
    backends: dict[int, float] = {}
    watch = psycopg.connect(url, autocommit=True) if not url.startswith("sqlite") else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with subprocess.Popen(args, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as proc:
        while proc.poll() is None:
            if watch is not None:
                pids = watch.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                for (pid,) in pids:
                    cpu = cpu_seconds(pid)
                    if cpu is not None:
                        backends[pid] = max(cpu, backends.get(pid, 0.0))
            time.sleep(0.1)
        stderr = proc.stderr.read() if proc.stderr else ""
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if watch is not None:
        watch.close()
    if proc.returncode != 0:
        raise SystemExit(f"herald contacts import failed ({proc.returncode}): {stderr[-2000:]}")
    client = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {
        "wall": wall,
        "says": stderr.strip().splitlines()[-1][:80],
        "client_cpu": client,
        "server_cpu": sum(backends.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--db", default="pg")
    parser.add_argument("--no-updates", action="store_true", help="skip the second import (all updates)")
    parser.add_argument("--batch-size", type=int, help="passed to the CLI (default: the CLI's own)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="herald-bench-import-"))
    path = tmp / "contacts.csv"
    write_csv(path, args.n)
    with scratch_db(args.db) as url:
        container = Container.build(Settings(database_url=url, secret_key="bench", base_url="https://h.example"))
        upgrade(container.engine)
        with container.transaction() as session:
            account_id = AccountService(session, container.cipher).create_account("bench")["account_id"]
        container.engine.dispose()
        floor_s = floor(url, path)
        env = {**os.environ, "HERALD_DATABASE_URL": url, "HERALD_SECRET_KEY": "bench", "HERALD_DATA_DIR": str(tmp)}
        for kind in ("new", "update")[: 1 if args.no_updates else 2]:
            extra = ["--batch-size", str(args.batch_size)] if args.batch_size else []
            run = run_cli(url, env, path, account_id, extra)
            wall, client, server = float(run["wall"]), float(run["client_cpu"]), float(run["server_cpu"])  # type: ignore[arg-type]
            emit(
                {
                    "bench": "import",
                    "rows": kind,
                    "db": "sqlite" if url.startswith("sqlite") else "postgresql",
                    "n": args.n,
                    "batch_size": args.batch_size or "default",
                    "cli_says": run["says"],
                    "floor_rows_per_s": round(args.n / floor_s),
                    "herald_rows_per_s": round(args.n / wall),
                    "herald_s": round(wall, 1),
                    "ratio": round(floor_s / wall, 3),
                    "cli_cpu_us_per_row": round(client / args.n * 1e6, 1),
                    "backend_cpu_us_per_row": round(server / args.n * 1e6, 1),
                }
            )
    path.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
