"""AllClients calls under concurrency, over real HTTP: every write answered and recorded once, and on SQLite a
read that does not wait for the write lock."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from herald.actor import Actor
from herald.consent.models import ConsentEvent
from herald.consent.service import ConsentService
from herald.container import Container
from tests.conftest import LiveServer

SET = "/api/2/SetOptInStatus.aspx"
GET = "/api/2/GetOptInStatus.aspx"


def _form(account: dict[str, Any], **fields: str) -> dict[str, str]:
    creds = account["allclients"]
    return {"accountid": creds["accountid"], "apikey": creds["apikey"], "response_type": "json", **fields}


def test_concurrent_set_opt_in_status_each_answered_and_recorded(
    live_server: LiveServer, container: Container, account: dict[str, Any]
) -> None:
    emails = [f"c{i}@example.com" for i in range(24)]
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id=account["account_id"], source="test"))
        for email in emails:
            svc.ensure(email)

    def set_status(email: str) -> Any:
        r = httpx.post(live_server.url + SET, data=_form(account, email=email, status="1"), timeout=30)
        return r.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(set_status, emails))
    assert answers == [{"message": "Success", "details": f"Email Address ({email}) is Now Opt In"} for email in emails]
    with container.transaction() as s:
        recorded = s.scalar(select(func.count()).select_from(ConsentEvent).where(ConsentEvent.to_status == "opted_in"))
    assert recorded == len(emails)


def test_get_opt_in_status_does_not_wait_for_the_sqlite_write_lock(
    live_server: LiveServer, container: Container, account: dict[str, Any]
) -> None:
    if container.engine.dialect.name != "sqlite":
        pytest.skip("the write lock is SQLite's")
    with container.transaction() as s:
        ConsentService(s, Actor(account_id=account["account_id"], source="test")).ensure("r@example.com")
    database = container.engine.url.database
    assert database is not None
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's writer holding the lock
        # Answered while the lock is still held (a read queued for the lock would wait out the 30 s busy
        # timeout, and the client gives up long before that).
        r = httpx.post(live_server.url + GET, data=_form(account, email="r@example.com"), timeout=10)
        assert r.json()["details"] == {"emailaddress": "r@example.com", "optinstatus": "Unknown"}
        assert holder.in_transaction
    finally:
        holder.execute("ROLLBACK")
        holder.close()
