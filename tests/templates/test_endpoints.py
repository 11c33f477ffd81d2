"""Native /senders, /templates and /messages through the real ASGI app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.actor import Actor
from herald.container import Container
from herald.templates.service import MessageService
from tests.conftest import auth

API = "/api/v1"


def _message(client: TestClient, creds: dict[str, Any], **body: Any) -> dict[str, Any]:
    r = client.post(f"{API}/messages", json={"name": "Welcome", "subject": "Hello", **body}, headers=auth(creds))
    assert r.status_code == 201, r.text
    return dict(r.json())


# -- senders --------------------------------------------------------------------------------------
def test_sender_create_and_list(client: TestClient, account: dict[str, Any], other_account: dict[str, Any]) -> None:
    h = auth(account)
    body = {"from_email": " News@Example.COM ", "from_name": "News", "reply_to": "help@example.com", "address": "1 St"}
    r = client.post(f"{API}/senders", json=body, headers=h)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["from_email"] == "news@example.com" and out["from_name"] == "News" and out["address"] == "1 St"
    assert [s["id"] for s in client.get(f"{API}/senders", headers=h).json()["items"]] == [out["id"]]
    assert client.get(f"{API}/senders", headers=auth(other_account)).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "from_email"),
        ({"from_email": "nope"}, "from_email"),
        ({"from_email": "a@example.com", "reply_to": "nope"}, "reply_to"),
        ({"from_email": "a@example.com", "from_name": "n" * 201}, "from_name"),
        ({"from_email": "a@example.com", "address": "a" * 501}, "address"),
    ],
)
def test_sender_bad_fields(client: TestClient, account: dict[str, Any], body: dict[str, Any], field: str) -> None:
    r = client.post(f"{API}/senders", json=body, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == field
    assert client.get(f"{API}/senders", headers=auth(account)).json()["items"] == []


# -- templates ------------------------------------------------------------------------------------
def test_templates_list_builtins_then_own(
    client: TestClient, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    h = auth(account)
    r = client.post(f"{API}/templates", json={"name": "Mine", "html": "<p>hi</p>", "json": {"rows": []}}, headers=h)
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["json"] == '{"rows": []}' and mine["builtin"] is False and mine["html"] == "<p>hi</p>"
    items = client.get(f"{API}/templates", headers=h).json()["items"]
    assert [t["id"] for t in items] == [1, 2, 3, mine["id"]]
    assert items[0]["name"] == "Blank Template" and items[0]["builtin"] is True and items[0]["is_blank"] is True
    theirs = client.get(f"{API}/templates", headers=auth(other_account)).json()["items"]
    assert [t["id"] for t in theirs] == [1, 2, 3]
    page = client.get(f"{API}/templates?limit=2", headers=h).json()
    assert [t["id"] for t in page["items"]] == [1, 2] and page["next_cursor"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": ""}, "name"), ({"name": "t" * 201}, "name"), ({"name": "t", "json": 5}, "json")],
)
def test_template_bad_fields(client: TestClient, account: dict[str, Any], body: dict[str, Any], field: str) -> None:
    r = client.post(f"{API}/templates", json=body, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"].split(".")[0] == field
    assert len(client.get(f"{API}/templates", headers=auth(account)).json()["items"]) == 3


# -- messages -------------------------------------------------------------------------------------
def test_message_create_patch_delete(client: TestClient, account: dict[str, Any]) -> None:
    h = auth(account)
    sender = client.post(f"{API}/senders", json={"from_email": "a@example.com"}, headers=h).json()["id"]
    msg = _message(client, account, html="<p>Hi</p>", text="Hi", customoptin=True, sender_id=sender)
    assert msg["customoptin"] is True and msg["locked"] is False and msg["sender_id"] == sender
    assert msg["user_id"] == account["user_id"]
    r = client.patch(f"{API}/messages/{msg['id']}", json={"subject": "Hello again"}, headers=h)
    assert r.status_code == 200 and r.json()["subject"] == "Hello again" and r.json()["html"] == "<p>Hi</p>"
    assert [m["subject"] for m in client.get(f"{API}/messages", headers=h).json()["items"]] == ["Hello again"]
    assert client.delete(f"{API}/messages/{msg['id']}", headers=h).status_code == 204
    assert client.get(f"{API}/messages", headers=h).json()["items"] == []
    assert client.delete(f"{API}/messages/{msg['id']}", headers=h).status_code == 404
    assert client.patch(f"{API}/messages/{msg['id']}", json={"name": "x"}, headers=h).status_code == 404


def test_locked_message_refuses_edit(client: TestClient, account: dict[str, Any], container: Container) -> None:
    h = auth(account)
    msg = _message(client, account, customoptin=True)
    with container.transaction() as s:
        MessageService(s, Actor(account_id=account["account_id"], source="test")).lock(msg["id"])
    r = client.patch(f"{API}/messages/{msg['id']}", json={"subject": "Changed"}, headers=h)
    assert r.status_code == 409 and r.json()["current_status"] == "locked"
    listed = client.get(f"{API}/messages", headers=h).json()["items"]
    assert listed[0]["subject"] == "Hello" and listed[0]["locked"] is True
    # Deleting stays possible: a rule that uses it keeps sending it.
    assert client.delete(f"{API}/messages/{msg['id']}", headers=h).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "s"}, "name"),
        ({"name": "n"}, "subject"),
        ({"name": "n", "subject": "s" * 501}, "subject"),
        ({"name": "n", "subject": "a\nBcc: x@example.com"}, "subject"),
        ({"name": "n", "subject": "s", "customoptin": "sometimes"}, "customoptin"),
        ({"name": "n", "subject": "s", "sender_id": 4242}, "sender_id"),
        ({"name": "n", "subject": "s", "category_id": 4242}, "category_id"),
    ],
)
def test_message_bad_fields(client: TestClient, account: dict[str, Any], body: dict[str, Any], field: str) -> None:
    r = client.post(f"{API}/messages", json=body, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == field
    assert client.get(f"{API}/messages", headers=auth(account)).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"), [({"name": None}, "name"), ({"subject": ""}, "subject"), ({"html": 5}, "html")]
)
def test_message_patch_bad_fields_change_nothing(
    client: TestClient, account: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    msg = _message(client, account)
    r = client.patch(f"{API}/messages/{msg['id']}", json=body, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == field
    listed = client.get(f"{API}/messages", headers=auth(account)).json()["items"]
    assert (listed[0]["name"], listed[0]["subject"], listed[0]["html"]) == ("Welcome", "Hello", "")


def test_messages_unknown_and_other_tenant(
    client: TestClient, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    msg = _message(client, account)
    o = auth(other_account)
    assert client.get(f"{API}/messages", headers=o).json()["items"] == []
    assert client.patch(f"{API}/messages/{msg['id']}", json={"name": "Mine now"}, headers=o).status_code == 404
    assert client.delete(f"{API}/messages/{msg['id']}", headers=o).status_code == 404
    h = auth(account)
    for bad in (msg["id"] + 100, 99999999999999999999):
        assert client.patch(f"{API}/messages/{bad}", json={"name": "x"}, headers=h).status_code == 404
        assert client.delete(f"{API}/messages/{bad}", headers=h).status_code == 404
    assert client.get(f"{API}/messages", headers=h).json()["items"][0]["name"] == "Welcome"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/senders"),
        ("post", "/senders"),
        ("get", "/templates"),
        ("post", "/templates"),
        ("get", "/messages"),
        ("post", "/messages"),
        ("patch", "/messages/1"),
        ("delete", "/messages/1"),
    ],
)
def test_bad_token_is_401(client: TestClient, account: dict[str, Any], method: str, path: str) -> None:
    body = {"name": "x", "subject": "s", "from_email": "a@example.com"}
    for headers in ({}, {"Authorization": "Bearer hrl_wrong"}):
        kwargs: dict[str, Any] = {"headers": headers}
        if method in ("post", "patch"):
            kwargs["json"] = body
        r = client.request(method, API + path, **kwargs)
        assert r.status_code == 401 and r.json()["status"] == 401
    assert client.get(f"{API}/messages", headers=auth(account)).json()["items"] == []
