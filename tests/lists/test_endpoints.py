"""Native /categories, /lists and /lists/{id}/subscriptions through the real ASGI app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from herald.container import Container
from herald.jobs.models import Job
from herald.lists.models import Subscription
from tests.conftest import auth

API = "/api/v1"


def _list(client: TestClient, creds: dict[str, Any], **body: Any) -> dict[str, Any]:
    r = client.post(f"{API}/lists", json={"name": "News", **body}, headers=auth(creds))
    assert r.status_code == 201, r.text
    return dict(r.json())


def _count(container: Container, model: Any) -> int:
    with container.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_categories_create_list_and_isolation(
    client: TestClient, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    h = auth(account)
    r = client.post(f"{API}/categories", json={"name": " Promotions "}, headers=h)
    assert r.status_code == 201
    assert r.json()["name"] == "Promotions" and isinstance(r.json()["id"], int)
    items = client.get(f"{API}/categories", headers=h).json()
    assert [c["name"] for c in items["items"]] == ["Promotions"] and items["next_cursor"] is None
    assert client.get(f"{API}/categories", headers=auth(other_account)).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"name": "a", "extra": 1}, "extra")],
)
def test_category_bad_fields(client: TestClient, account: dict[str, Any], body: dict[str, Any], field: str) -> None:
    r = client.post(f"{API}/categories", json=body, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == field
    assert client.get(f"{API}/categories", headers=auth(account)).json()["items"] == []


def test_lists_create_with_category_and_filter(
    client: TestClient, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    h = auth(account)
    cat = client.post(f"{API}/categories", json={"name": "C"}, headers=h).json()["id"]
    plain = _list(client, account)
    assert plain["double_opt_in"] is False and plain["category_id"] is None
    filed = _list(client, account, name="Filed", category_id=cat, double_opt_in=True)
    assert filed["category_id"] == cat and filed["double_opt_in"] is True
    all_ids = [x["id"] for x in client.get(f"{API}/lists", headers=h).json()["items"]]
    assert all_ids == [plain["id"], filed["id"]]
    in_cat = client.get(f"{API}/lists?category_id={cat}", headers=h).json()["items"]
    assert [x["id"] for x in in_cat] == [filed["id"]]
    assert client.get(f"{API}/lists?category_id=99999999999", headers=h).json()["items"] == []
    assert client.get(f"{API}/lists", headers=auth(other_account)).json()["items"] == []
    # Another tenant's category cannot be used.
    r = client.post(f"{API}/lists", json={"name": "L", "category_id": cat}, headers=auth(other_account))
    assert r.status_code == 422 and r.json()["field"] == "category_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category_id": 424242}, "category_id"),
        ({"category_id": "abc"}, "category_id"),
        ({"double_opt_in": "perhaps"}, "double_opt_in"),
        ({"name": "y" * 300}, "name"),
    ],
)
def test_list_bad_fields(client: TestClient, account: dict[str, Any], body: dict[str, Any], field: str) -> None:
    r = client.post(f"{API}/lists", json={"name": "L", **body}, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == field
    assert client.get(f"{API}/lists", headers=auth(account)).json()["items"] == []


def test_subscribe_defaults_follow_double_opt_in(
    client: TestClient, account: dict[str, Any], container: Container
) -> None:
    h = auth(account)
    single = _list(client, account)["id"]
    double = _list(client, account, name="Double", double_opt_in=True)["id"]
    r = client.post(f"{API}/lists/{single}/subscriptions", json={"email": " Ann@Example.COM "}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "ann@example.com" and r.json()["status"] == "active"
    assert r.json()["list_id"] == single
    # An active subscription leaves the global status as it was.
    assert client.get(f"{API}/addresses/ann@example.com", headers=h).json()["status"] == "unknown"
    r = client.post(f"{API}/lists/{double}/subscriptions", json={"email": "ann@example.com"}, headers=h)
    assert r.json()["status"] == "unconfirmed"
    r = client.post(
        f"{API}/lists/{double}/subscriptions", json={"email": "bob@example.com", "status": "active"}, headers=h
    )
    assert r.json()["status"] == "active"
    # Both lists shown on the address, and the ledger has the subscription events.
    addr = client.get(f"{API}/addresses/ann@example.com", headers=h).json()
    assert addr["lists"] == [
        {"id": single, "name": "News", "status": "active"},
        {"id": double, "name": "Double", "status": "unconfirmed"},
    ]
    events = client.get(f"{API}/addresses/ann@example.com/events", headers=h).json()["items"]
    assert [(e["list_id"], e["from_status"], e["to_status"], e["source"]) for e in events if e["list_id"]] == [
        (single, None, "active", "api"),
        (double, None, "unconfirmed", "api"),
    ]


def test_subscribe_refuses_suppressed_address_and_changes_nothing(
    client: TestClient, account: dict[str, Any], container: Container
) -> None:
    h = auth(account)
    lid = _list(client, account)["id"]
    client.post(f"{API}/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["list.subscribed"]}, headers=h)
    assert (
        client.put(f"{API}/addresses/out@example.com/status", json={"status": "opted_out"}, headers=h).status_code
        == 200
    )
    before = client.get(f"{API}/addresses/out@example.com/events", headers=h).json()["items"]
    jobs_before = _count(container, Job)
    r = client.post(
        f"{API}/lists/{lid}/subscriptions", json={"email": "out@example.com", "status": "active"}, headers=h
    )
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["current_status"] == "opted_out"
    assert client.get(f"{API}/addresses/out@example.com/events", headers=h).json()["items"] == before
    assert _count(container, Subscription) == 0 and _count(container, Job) == jobs_before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"email": "nope"}, "email"),
        ({"email": "a@example.com", "status": "unsubscribed"}, "status"),
        ({"email": "a" * 400 + "@example.com"}, "email"),
        ({"email": "a@example.com", "colour": "red"}, "colour"),
    ],
)
def test_subscribe_bad_fields(
    client: TestClient, account: dict[str, Any], container: Container, body: dict[str, Any], field: str
) -> None:
    lid = _list(client, account)["id"]
    r = client.post(f"{API}/lists/{lid}/subscriptions", json=body, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == field
    assert _count(container, Subscription) == 0


def test_subscriptions_unknown_list_other_tenant_and_paging(
    client: TestClient, account: dict[str, Any], other_account: dict[str, Any], container: Container
) -> None:
    h = auth(account)
    lid = _list(client, account)["id"]
    for i in range(3):
        client.post(f"{API}/lists/{lid}/subscriptions", json={"email": f"p{i}@example.com"}, headers=h)
    first = client.get(f"{API}/lists/{lid}/subscriptions?limit=2", headers=h).json()
    assert [x["email"] for x in first["items"]] == ["p0@example.com", "p1@example.com"] and first["next_cursor"]
    second = client.get(f"{API}/lists/{lid}/subscriptions?limit=2&cursor={first['next_cursor']}", headers=h).json()
    assert [x["email"] for x in second["items"]] == ["p2@example.com"] and second["next_cursor"] is None
    assert client.get(f"{API}/lists/{lid}/subscriptions?status=unconfirmed", headers=h).json()["items"] == []
    r = client.get(f"{API}/lists/{lid}/subscriptions?status=maybe", headers=h)
    assert r.status_code == 422 and r.json()["field"] == "status"
    for bad in (lid + 1000, 99999999999999999999):
        assert client.get(f"{API}/lists/{bad}/subscriptions", headers=h).status_code == 404
        r = client.post(f"{API}/lists/{bad}/subscriptions", json={"email": "z@example.com"}, headers=h)
        assert r.status_code == 404
    o = auth(other_account)
    assert client.get(f"{API}/lists/{lid}/subscriptions", headers=o).status_code == 404
    r = client.post(f"{API}/lists/{lid}/subscriptions", json={"email": "z@example.com"}, headers=o)
    assert r.status_code == 404
    assert _count(container, Subscription) == 3
    assert client.get(f"{API}/addresses/z@example.com", headers=o).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/categories"),
        ("post", "/categories"),
        ("get", "/lists"),
        ("post", "/lists"),
        ("get", "/lists/1/subscriptions"),
        ("post", "/lists/1/subscriptions"),
    ],
)
def test_bad_token_is_401(client: TestClient, account: dict[str, Any], method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer hrl_wrong"}):
        r = client.request(method, API + path, json={"name": "x", "email": "a@example.com"}, headers=headers)
        assert r.status_code == 401 and r.json()["status"] == 401
    assert client.get(f"{API}/lists", headers=auth(account)).json()["items"] == []
