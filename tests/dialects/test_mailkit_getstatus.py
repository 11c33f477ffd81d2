"""Mailkit getstatus's one-statement read path, through the real app: the same answers and refusals as the
service path, in the same order, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from herald.accounts.models import Credential, User
from herald.accounts.service import MAILKIT
from herald.actor import Actor
from herald.consent.models import Address
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from herald.dialects.mailkit_repository import EMBEDDED_BUSY_MS
from tests.dialects.test_mailkit import GETSTATUS, JSON, _known
from tests.dialects.test_mailkit import _call as mailkit_call


def _call(account: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    return mailkit_call(account, GETSTATUS, **parameters)


def _error(client: TestClient, body: dict[str, Any]) -> Any:
    r = client.post(JSON, json=body)
    assert r.status_code == 200
    return r.json().get("error")


def test_credentials_are_refused_before_the_parameters_are_looked_at(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    bad = {"md5": "0" * 32}
    for params in ({}, {"ID_email": "abc"}, {"ID_email": 99999999999}, {"email": "nobody@example.com"}):
        assert _error(client, {**_call(account, **params), **bad}) == "Unauthorized", params
        assert _error(client, {**_call(account, **params), "id": "999999"}) == "Unauthorized", params


def test_a_credential_of_a_removed_user_is_refused(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    _known(container, account, "u@example.com")
    with container.transaction() as s:
        s.execute(
            update(Credential)
            .where(Credential.kind == MAILKIT, Credential.account_id == aid)
            .values(user_id=account["user_id"])
        )
    assert client.post(JSON, json=_call(account, email="u@example.com")).json()["email"] == "u@example.com"
    with container.transaction() as s:
        s.execute(delete(User).where(User.id == account["user_id"]))
    assert _error(client, _call(account, email="u@example.com")) == "Unauthorized"


def test_email_is_matched_as_stored_and_nothing_else(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    aid = _known(container, account, "mixed@example.com")
    _known(container, other_account, "theirs@example.com")
    r = client.post(JSON, json=_call(account, email="  MIXED@Example.COM "))
    assert (r.json()["email"], r.json()["ID_email"]) == ("mixed@example.com", str(aid))
    for email in ("mixed@exam\nple.com", "mixed\x00@example.com", "x" * 400 + "@example.com", "theirs@example.com"):
        assert _error(client, _call(account, email=email)) == "Invalid ID_email or email", email
    # both given: they must name the same address of the account
    assert client.post(JSON, json=_call(account, email="mixed@example.com", ID_email=str(aid))).json()["ID_email"]
    assert _error(client, _call(account, email="mixed@example.com", ID_email=aid + 1000)) == "Invalid ID_email or email"


def test_an_ended_temporary_opt_out_reads_as_the_status_it_returned_to(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    aid = _known(container, account, "back@example.com", "opted_in")
    with container.transaction() as s:
        s.execute(
            update(Address)
            .where(Address.id == aid)
            .values(status="opted_out", status_before_optout="opted_in", opted_out_until=utcnow() - timedelta(days=1))
        )
    r = client.post(JSON, json=_call(account, ID_email=aid)).json()
    assert (r["unsubscribe"], r["timeout"]) == ("FALSE", {"date": "0000-00-00"})
    until = utcnow() + timedelta(days=20)
    with container.transaction() as s:
        s.execute(update(Address).where(Address.id == aid).values(opted_out_until=until))
    r = client.post(JSON, json=_call(account, ID_email=aid)).json()
    assert (r["unsubscribe"], r["timeout"]) == ("TRUE", {"date": until.date().isoformat()})


def test_answers_again_after_its_connections_were_closed(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    _known(container, account, "again@example.com", "opted_out")
    body = _call(account, email="again@example.com")
    assert client.post(JSON, json=body).json()["unsubscribe"] == "TRUE"
    container.engine.dispose()  # closes the reader's kept connections, as a database restart would drop them
    assert client.post(JSON, json=body).json()["unsubscribe"] == "TRUE"
    reads = container.extras["mailkit_status_reads"]
    for conn in list(reads._opened):  # noqa: SLF001 - a connection dropped underneath, without our knowing
        conn.close()
    assert client.post(JSON, json=body).json()["unsubscribe"] == "TRUE"


@pytest.mark.parametrize("ident", ["id", "email"])
def test_unknown_address_answers_one_error_whatever_the_topics(
    client: TestClient, container: Container, account: dict[str, Any], ident: str
) -> None:
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id=account["account_id"], source="test"))
        for name in ("a", "b", "c"):
            svc.create_topic(name)
    params = {"ID_email": 424242} if ident == "id" else {"email": "ghost@example.com"}
    assert _error(client, _call(account, **params)) == "Invalid ID_email or email"


def test_the_event_loop_read_waits_briefly_for_a_sqlite_lock(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    if container.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's locking")
    _known(container, account, "locked@example.com", "opted_in")
    assert client.post(JSON, json=_call(account, email="locked@example.com")).json()["unsubscribe"] == "FALSE"
    reads = container.extras["mailkit_status_reads"]
    # The read runs on the event loop: its connection waits 200 ms for a lock, not the engine's 30 s. (Only a
    # connection holding the file in exclusive locking mode could make a WAL read wait at all, and SQLite
    # grants that mode only while no other connection is open, so the case itself cannot be staged here.)
    timeouts = [c.execute("PRAGMA busy_timeout").fetchone()[0] for c in reads._opened]  # noqa: SLF001
    assert timeouts == [EMBEDDED_BUSY_MS]
    with container.engine.connect() as conn:  # the engine's own connections keep their 30 s
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
