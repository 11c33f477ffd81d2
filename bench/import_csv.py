"""Contacts import: `herald contacts import` of an n-row CSV, vs a bare COPY of the same file, same run.

    python bench/import_csv.py [-n 1000000] [--db pg|sqlite]

Writes a CSV (email, first_name, last_name, city, country, one custom column) of n new contacts, creates an
account on a scratch database, then times the real CLI in a subprocess (`herald contacts import FILE
--account ID`: validation, normalisation, suppression check, contacts + addresses upserts). The floor
is PostgreSQL's COPY of the same file into an unindexed table (on SQLite, executemany of the parsed rows).
Prints rows/s for both and their ratio.
"""

from __future__ import annotations

import argparse
import csv
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, scratch_db  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--db", default="pg")
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
        started = time.perf_counter()
        out = subprocess.run(
            [
                str(Path(sys.executable).parent / "herald"),
                "contacts",
                "import",
                str(path),
                "--account",
                str(account_id),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        herald_s = time.perf_counter() - started
        emit(
            {
                "bench": "import",
                "db": "sqlite" if url.startswith("sqlite") else "postgresql",
                "n": args.n,
                "cli_says": out.stderr.strip().splitlines()[-1][:80],
                "floor_rows_per_s": round(args.n / floor_s),
                "herald_rows_per_s": round(args.n / herald_s),
                "herald_s": round(herald_s, 1),
                "ratio": round(floor_s / herald_s, 3),
            }
        )
    path.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
