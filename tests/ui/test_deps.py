"""The UI's database work never runs on the event loop (SQLite lock waits must not stall the whole server)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from herald.container import Container
from tests.conftest import LiveServer
from tests.ui.conftest import csrf_token, set_password, sign_in


def test_ui_request_waiting_for_the_sqlite_write_lock_does_not_block_other_requests(
    container: Container, account: dict[str, Any], live_server: LiveServer
) -> None:
    if container.engine.dialect.name != "sqlite":
        pytest.skip("the write lock that blocks every writer is SQLite's")
    set_password(container, account)
    with httpx.Client(base_url=live_server.url, timeout=30) as browser:
        assert sign_in(browser, user=str(account["user_id"])).status_code == 303  # type: ignore[arg-type]
        token = csrf_token(browser)  # type: ignore[arg-type]
        locked, release = threading.Event(), threading.Event()

        def hold_write_lock() -> None:
            with container.transaction() as session:
                session.execute(text("UPDATE accounts SET name = name"))  # BEGIN IMMEDIATE: the write lock
                locked.set()
                release.wait(10)

        holder = threading.Thread(target=hold_write_lock)
        holder.start()
        assert locked.wait(10)
        answers: list[int] = []
        waiting = threading.Thread(
            target=lambda: answers.append(
                browser.post("/ui/topics", data={"name": "News", "csrf_token": token}).status_code
            )
        )
        waiting.start()
        time.sleep(0.3)  # the UI request is now inside the server, waiting for the lock
        started = time.monotonic()
        with httpx.Client(base_url=live_server.url, timeout=30) as other:
            assert other.get("/healthz").status_code == 200
        elapsed = time.monotonic() - started
        release.set()
        holder.join(10)
        waiting.join(30)
    assert elapsed < 1.5, f"/healthz took {elapsed:.1f} s while a UI request waited for the SQLite lock"
    assert answers and answers[0] in (200, 303)
