"""The `herald` command through its real entry point (a subprocess), as CONTRACT.md prints it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import httpx

from herald.container import Container
from herald.settings import Settings
from tests.conftest import free_port


def herald(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": settings.database_url,
        "HERALD_SECRET_KEY": settings.secret_key or "",
        "HERALD_SMTP_URL": settings.smtp_url,
        "HERALD_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "herald", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_account_create_json_prints_exactly_the_contract(settings: Settings, container: Container) -> None:
    out = herald(settings, "account", "create", "acme", "--json")
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    assert out.stdout.count("\n") == 1
    assert set(data) == {"account_id", "user_id", "api_token", "allclients", "mailkit", "skycore", "alls", "signupto"}
    assert data["allclients"]["accountid"] == str(data["account_id"])
    assert re.fullmatch(r"[0-9a-f]{32}", data["allclients"]["apikey"])
    assert data["mailkit"]["client_id"] == data["account_id"] and data["mailkit"]["client_md5"]
    assert set(data["alls"]) == {"public_key", "secret_key"} and data["skycore"]["api_key"]
    assert data["signupto"]["cid"] == data["account_id"] and data["signupto"]["uid"] == data["user_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", data["signupto"]["api_key"])

    user = herald(settings, "user", "create", "--account", str(data["account_id"]), "bob", "--json")
    assert user.returncode == 0, user.stderr
    udata = json.loads(user.stdout)
    assert set(udata) == {"user_id", "api_token", "signupto"} and udata["signupto"]["uid"] == udata["user_id"]
    missing = herald(settings, "user", "create", "--account", "999", "ghost", "--json")
    assert missing.returncode == 1 and "account 999 not found" in missing.stderr and missing.stdout == ""


def test_migrate_is_idempotent(settings: Settings, container: Container) -> None:
    assert herald(settings, "migrate").returncode == 0
    assert herald(settings, "migrate").returncode == 0


def test_serve_answers_openapi_within_seconds(settings: Settings, container: Container) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": settings.database_url,
        "HERALD_SECRET_KEY": "k",
        "HERALD_SMTP_URL": settings.smtp_url,
        "HERALD_DATA_DIR": str(settings.data_dir),
    }
    log = settings.data_dir.parent / "serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "herald", "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "herald serve did not answer within 20 s"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["info"]["title"] == "Herald native API"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
