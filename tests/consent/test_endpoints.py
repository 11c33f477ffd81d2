"""Native /addresses and /topics routes through the real ASGI app."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from tests.conftest import auth


def _known(container: Container, account: dict[str, Any], email: str) -> None:
    with container.transaction() as s:
        ConsentService(s, Actor(account_id=account["account_id"], source="test")).ensure(email)


def test_openapi_needs_no_token(client: TestClient) -> None:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert "/addresses/{email}/status" in r.json()["paths"]


def test_unknown_address_is_404_problem(client: TestClient, account: dict[str, Any]) -> None:
    r = client.get("/api/v1/addresses/nobody@example.com", headers=auth(account))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.get("/api/v1/addresses/nobody@example.com/events", headers=auth(account))
    assert r.status_code == 404


def test_bad_or_missing_token_is_401(client: TestClient, account: dict[str, Any]) -> None:
    assert client.get("/api/v1/topics").status_code == 401
    r = client.get("/api/v1/topics", headers={"Authorization": "Bearer hrl_nope"})
    assert r.status_code == 401 and r.json()["status"] == 401


def test_status_change_echoes_normalised_email_and_writes_ledger(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    h = auth(account)
    r = client.put(
        "/api/v1/addresses/%20Ann@Example.COM%20/status", json={"status": "opted_in", "reason": "form"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ann@example.com" and r.json()["status"] == "opted_in"
    r = client.put("/api/v1/addresses/ann@example.com/status", json={"status": "opted_in"}, headers=h)
    assert r.status_code == 409
    assert r.json()["current_status"] == "opted_in"
    events = client.get("/api/v1/addresses/ann@example.com/events", headers=h).json()["items"]
    assert [(e["from_status"], e["to_status"], e["source"], e["reason"]) for e in events] == [
        ("unknown", "opted_in", "api", "form")
    ]
    assert events[0]["credential"] is not None and events[0]["ip"]


def test_temporary_optout_with_date(client: TestClient, account: dict[str, Any], container: Container) -> None:
    _known(container, account, "t@example.com")
    r = client.put(
        "/api/v1/addresses/t@example.com/status",
        json={"status": "opted_out", "until": "2099-01-31"},
        headers=auth(account),
    )
    assert r.status_code == 200
    assert r.json()["status"] == "opted_out" and r.json()["opted_out_until"].startswith("2099-01-31")


def test_bad_input_names_the_field_and_changes_nothing(
    client: TestClient, account: dict[str, Any], container: Container
) -> None:
    _known(container, account, "b@example.com")
    h = auth(account)
    r = client.put("/api/v1/addresses/b@example.com/status", json={"status": "maybe"}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = client.put(
        "/api/v1/addresses/b@example.com/status", json={"status": "bounced", "until": "2099-01-01"}, headers=h
    )
    assert r.status_code == 422 and r.json()["field"] == "until"
    r = client.put("/api/v1/addresses/not-an-email/status", json={"status": "opted_in"}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "email"
    assert client.get("/api/v1/addresses/b@example.com", headers=h).json()["status"] == "unknown"
    assert client.get("/api/v1/addresses/b@example.com/events", headers=h).json()["items"] == []


def test_topics_and_topic_unsubscribe(client: TestClient, account: dict[str, Any], container: Container) -> None:
    h = auth(account)
    t = client.post("/api/v1/topics", json={"name": "Blog", "description": "Tips"}, headers=h)
    assert t.status_code == 201
    tid = t.json()["id"]
    _known(container, account, "a@example.com")
    r = client.put("/api/v1/addresses/a@example.com/status", json={"status": "opted_out", "topic_id": tid}, headers=h)
    body = r.json()
    assert body["status"] == "unknown"  # global status untouched
    assert body["topics"] == [{"id": tid, "name": "Blog", "unsubscribed": True}]
    events = client.get("/api/v1/addresses/a@example.com/events", headers=h).json()["items"]
    assert events[-1]["topic_id"] == tid and events[-1]["to_status"] == "unsubscribed"
    r = client.put("/api/v1/addresses/a@example.com/status", json={"status": "opted_in", "topic_id": tid}, headers=h)
    assert r.json()["topics"][0]["unsubscribed"] is False


def test_topics_paginate_and_are_tenant_isolated(
    client: TestClient, account: dict[str, Any], other_account: dict[str, Any], container: Container
) -> None:
    h = auth(account)
    ids = [client.post("/api/v1/topics", json={"name": f"T{i}"}, headers=h).json()["id"] for i in range(3)]
    first = client.get("/api/v1/topics?limit=2", headers=h).json()
    assert [t["id"] for t in first["items"]] == ids[:2] and first["next_cursor"]
    second = client.get(f"/api/v1/topics?limit=2&cursor={first['next_cursor']}", headers=h).json()
    assert [t["id"] for t in second["items"]] == ids[2:] and second["next_cursor"] is None
    assert client.get("/api/v1/topics", headers=auth(other_account)).json()["items"] == []
    _known(container, other_account, "o@example.com")
    r = client.put(
        "/api/v1/addresses/o@example.com/status",
        json={"status": "opted_out", "topic_id": ids[0]},
        headers=auth(other_account),
    )
    assert r.status_code == 404
    assert client.get("/api/v1/addresses/o@example.com", headers=h).status_code == 404
    assert client.get("/api/v1/topics?cursor=garbage!", headers=h).json()["field"] == "cursor"
