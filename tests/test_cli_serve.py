"""`herald serve --workers N`: several web processes, the worker loop exactly once (in the supervisor)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from herald.container import Container
from herald.settings import Settings
from tests.conftest import free_port, make_account
from tests.webhooks.test_delivery import Receiver


@contextmanager
def serving(settings: Settings, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, Path, int]]:
    """`herald serve` as a subprocess on a free port: its base URL, its log file and its pid."""
    port = free_port()
    full_env = {
        **os.environ,
        "HERALD_DATABASE_URL": settings.database_url,
        "HERALD_SECRET_KEY": settings.secret_key or "k",
        "HERALD_SMTP_URL": settings.smtp_url,
        "HERALD_DATA_DIR": str(settings.data_dir),
        "HERALD_WORKER_POLL_SECONDS": "0.1",
        **(env or {}),
    }
    log = settings.data_dir.parent / f"serve-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "herald", "serve", "--port", str(port), *args], env=full_env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "herald serve did not answer within 60 s"
                time.sleep(0.1)
        yield url, log, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _getstatus(url: str, account: dict[str, Any], email: str) -> Any:
    body = {
        "function": "mailkit.email.unsubscribe.getstatus",
        "id": account["mailkit"]["client_id"],
        "md5": account["mailkit"]["client_md5"],
        "parameters": {"email": email},
    }
    # A new connection each time, so the calls spread over the processes.
    return httpx.post(f"{url}/json.fcgi", json=body, headers={"connection": "close"}, timeout=10).json()


def test_two_web_processes_answer_and_the_worker_runs_once(settings: Settings, container: Container) -> None:
    account = make_account(container)
    api = {"Authorization": f"Bearer {account['api_token']}"}
    receiver = Receiver()
    try:
        with serving(settings, "--workers", "2") as (url, log, _pid):
            hook = {"url": receiver.url, "events": ["address.status_changed"]}
            assert httpx.post(f"{url}/api/v1/webhooks", json=hook, headers=api).status_code == 201
            for _ in range(20):
                assert _getstatus(url, account, "nobody@example.com") == {
                    "error_status": 1,
                    "error": "Invalid ID_email or email",
                }
            r = httpx.put(f"{url}/api/v1/addresses/w@example.com/status", json={"status": "opted_in"}, headers=api)
            assert r.status_code == 200, r.text
            assert _getstatus(url, account, "W@example.com")["unsubscribe"] == "FALSE"
            # The queued webhook is delivered by the supervisor's worker loop.
            deadline = time.monotonic() + 20
            while not receiver.requests:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        text = log.read_text()
        assert text.count("herald.worker: worker") == 2, text  # one "started", one "stopped"
        assert "started" in text and "stopped" in text
    finally:
        receiver.close()
    assert len(receiver.requests) == 1


def test_workers_from_the_environment_and_no_worker(settings: Settings, container: Container) -> None:
    account = make_account(container)
    with serving(settings, "--no-worker", env={"HERALD_WEB_WORKERS": "2"}) as (url, log, pid):
        assert _getstatus(url, account, "nobody@example.com")["error"] == "Invalid ID_email or email"
        # -ww: without it ps cuts each line at the terminal width, and a long interpreter path hides the flag.
        children = subprocess.run(
            ["ps", "-ww", "--ppid", str(pid), "-o", "args="], capture_output=True, text=True
        ).stdout
        assert sum("--multiprocessing-fork" in line for line in children.splitlines()) == 2, children
    assert "herald.worker" not in log.read_text()


def test_a_send_created_now_starts_without_waiting_for_the_poll(settings: Settings, container: Container) -> None:
    """The request's commit wakes the in-process worker: a send to go now completes long before a 60 s poll."""
    from tests.sends.factory import add_contact, world

    account = make_account(container)
    with container.transaction() as session:
        w = world(session, account["account_id"])
        add_contact(session, w.account_id, "ann@example.com", type_id=w.type_id)
    api = {"Authorization": f"Bearer {account['api_token']}"}
    body = {
        "template_id": 2,
        "sender_id": w.sender_id,
        "single_send_name": "Now",
        "subject": "now",
        "recipient_id": [f"contacts_{w.type_id}"],
        "schedule_type": 0,
    }
    with serving(settings, env={"HERALD_WORKER_POLL_SECONDS": "60"}) as (url, log, _):
        time.sleep(1)  # the worker's first tick is over: it now waits out its 60 s poll unless woken
        r = httpx.post(f"{url}/api/v1/single-sends", json=body, headers=api, timeout=10)
        assert r.status_code in (200, 201), r.text
        deadline = time.monotonic() + 20
        while (send := httpx.get(f"{url}/api/v1/single-sends/{r.json()['id']}", headers=api).json())["status"] != 3:
            assert time.monotonic() < deadline, (send, log.read_text())
            time.sleep(0.1)
    assert len(list((Path(settings.smtp_url.split(":", 1)[1]) / "new").iterdir())) == 1
