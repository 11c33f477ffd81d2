"""Shared helpers for the benchmark scripts: scratch databases, load average, result lines."""

from __future__ import annotations

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

PG_ADMIN = os.environ.get("HERALD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def load() -> str:
    """The 1/5/15-minute load average, reported with every figure (the machine is shared)."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def machine() -> dict[str, Any]:
    """What a figure was measured on."""
    return {"nproc": os.cpu_count(), "load": load(), "date": time.strftime("%Y-%m-%d %H:%M")}


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
