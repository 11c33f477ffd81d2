"""Dialect API load: Mailkit getstatus and AllClients SetOptInStatus under wrk, vs a bare Starlette app.

    python bench/api_load.py [--db sqlite|pg] [--workers N] [--threads 2] [--connections 32] [--seconds 10]
                             [--addresses 10000]

Starts `herald serve` (its defaults, plus `--workers N` when given: N web processes, uvloop/httptools when
installed) on a scratch database holding one account and `--addresses` addresses (5 % opted out, 10 % of
them unsubscribed from one of two topics), then a bare Starlette app under uvicorn (same process count, same
loop and parser) answering getstatus's JSON without a database. wrk (`apt-get install -y wrk`) posts random
addresses at a fixed concurrency; the bare app is measured before and after Herald and averaged. Prints one
JSON line per endpoint: req/s, p50/p99 latency, the ratio to the bare app.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, ensure_apt, free_port, scratch_db, wait_port  # noqa: E402

from herald.accounts.service import AccountService  # noqa: E402
from herald.container import Container  # noqa: E402
from herald.db.migrate import upgrade  # noqa: E402
from herald.settings import Settings  # noqa: E402

BARE_APP = """
import json
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
BODY = json.dumps({"email": "r1@example.org", "error_status": "0", "topics": None, "ID_email": "1",
                   "unsubscribe": "FALSE", "timeout": {"date": "0000-00-00"}})
async def status(request):
    await request.body()
    return Response(BODY, media_type="application/json")
app = Starlette(routes=[Route("/json.fcgi", status, methods=["POST"])])
"""

GETSTATUS_LUA = """
math.randomseed(os.time())
request = function()
  local body = string.format('{"function":"mailkit.email.unsubscribe.getstatus","id":"%s","md5":"%s",'
    .. '"parameters":{"email":"r%d@example.org"}}', "{client_id}", "{md5}", math.random(1, {n}))
  return wrk.format("POST", "/json.fcgi", {["Content-Type"]="application/json"}, body)
end
"""

SETOPTIN_LUA = """
math.randomseed(os.time() + 1)
request = function()
  local body = string.format("accountid=%s&apikey=%s&email=r%d%%40example.org&status=%d&response_type=json",
    "{accountid}", "{apikey}", math.random(1, {n}), math.random(1, 2))
  return wrk.format("POST", "/api/2/SetOptInStatus.aspx",
    {["Content-Type"]="application/x-www-form-urlencoded"}, body)
end
"""


def populate(url: str, n: int) -> dict[str, dict[str, str]]:
    """One account with n addresses and two topics; returns its credentials."""
    container = Container.build(Settings(database_url=url, secret_key="bench", base_url="https://h.example"))
    upgrade(container.engine)
    with container.transaction() as session:
        creds = AccountService(session, container.cipher).create_account("bench")
    aid = creds["account_id"]
    with container.engine.begin() as conn:
        for name in ("news", "offers"):
            conn.execute(
                text(
                    "INSERT INTO topics (account_id, name, description, enabled, created_at) "
                    "VALUES (:a, :name, '', true, CURRENT_TIMESTAMP)"
                ),
                {"a": aid, "name": name},
            )
        rows = [
            {"a": aid, "e": f"r{i}@example.org", "s": "opted_out" if i % 20 == 0 else "opted_in"}
            for i in range(1, n + 1)
        ]
        conn.execute(
            text(
                "INSERT INTO addresses (account_id, email, status, created_at, updated_at) "
                "VALUES (:a, :e, :s, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            rows,
        )
        conn.execute(
            text(
                "INSERT INTO topic_unsubscribes (address_id, topic_id, at) SELECT a.id, t.id, CURRENT_TIMESTAMP "
                "FROM addresses a JOIN topics t ON t.account_id = a.account_id AND t.name = 'news' "
                "WHERE a.account_id = :a AND a.id % 10 = 3"
            ),
            {"a": aid},
        )
    container.engine.dispose()
    return {"mailkit": {k: str(v) for k, v in creds["mailkit"].items()}, "allclients": creds["allclients"]}


def wrk(wrk_bin: str, port: int, script: str, args: argparse.Namespace) -> dict[str, float]:
    """Run wrk with a request script; req/s and p50/p99 in ms."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                wrk_bin,
                f"-t{args.threads}",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "--latency",
                "-s",
                f.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def start(cmd: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server and wait until it answers HTTP (with several processes the port is bound before they
    are ready, so an open port is not enough), then a little longer for its other processes."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    wait_port(port, timeout=60)
    deadline = time.monotonic() + 60
    while True:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/json.fcgi", data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{cmd[0]} did not answer on port {port}") from None
            time.sleep(0.2)
    time.sleep(3 if "--workers" in cmd else 0.5)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bare(wrk_bin: str, script: str, args: argparse.Namespace) -> dict[str, float]:
    """The floor: the bare app under uvicorn with the same process count, loop and parser as herald serve."""
    port = free_port()
    app_dir = tempfile.mkdtemp(prefix="herald-bench-bare-")
    Path(app_dir, "bare_floor.py").write_text(BARE_APP)
    cmd = [sys.executable, "-m", "uvicorn", "bare_floor:app", "--app-dir", app_dir, "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log", "--loop", "auto", "--http", "auto"]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    proc = start(cmd, port)
    try:
        return wrk(wrk_bin, port, script, args)
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--addresses", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="herald serve --workers (and the floor's processes)")
    args = parser.parse_args()
    wrk_bin = ensure_apt("wrk", "wrk")
    with scratch_db(args.db) as url:
        creds = populate(url, args.addresses)
        mk, ac = creds["mailkit"], creds["allclients"]
        n = str(args.addresses)
        getstatus = GETSTATUS_LUA.replace("{client_id}", mk["client_id"]).replace("{md5}", mk["client_md5"])
        setoptin = SETOPTIN_LUA.replace("{accountid}", ac["accountid"]).replace("{apikey}", ac["apikey"])
        getstatus, setoptin = getstatus.replace("{n}", n), setoptin.replace("{n}", n)
        port = free_port()
        data_dir = tempfile.mkdtemp(prefix="herald-bench-serve-")
        env = {
            **os.environ,
            "HERALD_DATABASE_URL": url,
            "HERALD_SECRET_KEY": "bench",
            "HERALD_DATA_DIR": data_dir,
            "HERALD_BASE_URL": f"http://127.0.0.1:{port}",
            "HERALD_SMTP_URL": "smtp://127.0.0.1:1",
        }
        herald_bin = str(Path(sys.executable).parent / "herald")
        floor_before = bare(wrk_bin, getstatus, args)
        serve = [herald_bin, "serve", "--port", str(port)]
        if args.workers > 1:
            serve += ["--workers", str(args.workers)]
        proc = start(serve, port, env)
        try:
            results = {
                "getstatus": wrk(wrk_bin, port, getstatus, args),
                "setoptinstatus": wrk(wrk_bin, port, setoptin, args),
            }
        finally:
            stop(proc)
        floor_after = bare(wrk_bin, getstatus, args)
        floor = (floor_before["rps"] + floor_after["rps"]) / 2
        for name, r in results.items():
            emit(
                {
                    "bench": f"api_load.{name}",
                    "db": "sqlite" if url.startswith("sqlite") else "postgresql",
                    "concurrency": f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s",
                    "workers": args.workers,
                    "bare_rps": round(floor),
                    "bare_p99_ms": max(floor_before["p99_ms"], floor_after["p99_ms"]),
                    **{k: round(v, 2) for k, v in r.items()},
                    "ratio_to_bare": round(r["rps"] / floor, 3),
                }
            )


if __name__ == "__main__":
    main()
