"""Native /webhooks through the real ASGI app, and events from list changes reaching the job queue."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.container import Container
from herald.jobs.models import Job
from herald.webhooks.models import Webhook
from herald.webhooks.outbox import WEBHOOK_JOB
from tests.conftest import auth

API = "/api/v1"


def _hooks(container: Container) -> list[Webhook]:
    with container.transaction() as s:
        return list(s.scalars(select(Webhook).order_by(Webhook.id)))


def test_create_list_delete(client: TestClient, account: dict[str, Any], container: Container) -> None:
    h = auth(account)
    body = {"url": "http://127.0.0.1:8999/hook", "events": ["list.subscribed"], "secret": "topsecret"}
    r = client.post(f"{API}/webhooks", json=body, headers=h)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["url"] == body["url"] and out["events"] == ["list.subscribed"] and out["format"] == "native"
    assert out["has_secret"] is True and "secret" not in out and "secret_enc" not in out
    assert "topsecret" not in r.text
    sky = client.post(f"{API}/webhooks", json={"url": "http://10.0.0.5/pb", "format": "skycore"}, headers=h).json()
    assert sky["events"] == ["list.subscribed", "list.unsubscribed"] and sky["has_secret"] is False
    listed = client.get(f"{API}/webhooks", headers=h)
    assert [w["id"] for w in listed.json()["items"]] == [out["id"], sky["id"]]
    assert "topsecret" not in listed.text
    stored = _hooks(container)[0]
    assert stored.secret_enc and container.cipher.decrypt(stored.secret_enc) == "topsecret"
    assert client.delete(f"{API}/webhooks/{out['id']}", headers=h).status_code == 204
    assert [w["id"] for w in client.get(f"{API}/webhooks", headers=h).json()["items"]] == [sky["id"]]
    assert client.delete(f"{API}/webhooks/{out['id']}", headers=h).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://h/" + "x" * 2100}, "url"),
        ({"url": "http://h/", "events": ["nope"]}, "events"),
        ({"url": "http://h/", "events": "list.subscribed"}, "events"),
        ({"url": "http://h/", "events": []}, "events"),
        ({"url": "http://h/", "format": "xml"}, "format"),
        ({"url": "http://h/", "format": "skycore", "events": ["complaint"]}, "events"),
        ({"url": "http://h/", "secret": "s" * 300}, "secret"),
    ],
)
def test_bad_fields(
    client: TestClient, account: dict[str, Any], container: Container, body: dict[str, Any], field: str
) -> None:
    r = client.post(f"{API}/webhooks", json=body, headers=auth(account))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert _hooks(container) == []


def test_unknown_and_other_tenant(
    client: TestClient, account: dict[str, Any], other_account: dict[str, Any], container: Container
) -> None:
    hook = client.post(f"{API}/webhooks", json={"url": "http://h/"}, headers=auth(account)).json()
    o = auth(other_account)
    assert client.get(f"{API}/webhooks", headers=o).json()["items"] == []
    assert client.delete(f"{API}/webhooks/{hook['id']}", headers=o).status_code == 404
    for bad in (hook["id"] + 50, 99999999999999999999):
        assert client.delete(f"{API}/webhooks/{bad}", headers=auth(account)).status_code == 404
    assert client.delete(f"{API}/webhooks/abc", headers=auth(account)).status_code == 422
    assert [w.id for w in _hooks(container)] == [hook["id"]]


@pytest.mark.parametrize(("method", "path"), [("get", "/webhooks"), ("post", "/webhooks"), ("delete", "/webhooks/1")])
def test_bad_token_is_401(
    client: TestClient, account: dict[str, Any], container: Container, method: str, path: str
) -> None:
    client.post(f"{API}/webhooks", json={"url": "http://h/"}, headers=auth(account))
    for headers in ({}, {"Authorization": "Bearer hrl_wrong"}):
        kwargs: dict[str, Any] = {"headers": headers}
        if method == "post":
            kwargs["json"] = {"url": "http://h/"}
        r = client.request(method, API + path, **kwargs)
        assert r.status_code == 401 and r.json()["status"] == 401
    assert len(_hooks(container)) == 1


def test_list_changes_queue_webhook_jobs(client: TestClient, account: dict[str, Any], container: Container) -> None:
    h = auth(account)
    sub_hook = client.post(f"{API}/webhooks", json={"url": "http://h/1", "events": ["list.subscribed"]}, headers=h)
    client.post(f"{API}/webhooks", json={"url": "http://h/2", "events": ["complaint"]}, headers=h)
    lid = client.post(f"{API}/lists", json={"name": "News"}, headers=h).json()["id"]
    r = client.post(f"{API}/lists/{lid}/subscriptions", json={"email": "Ann@Example.com"}, headers=h)
    assert r.status_code == 201
    with container.transaction() as s:
        jobs = s.scalars(select(Job).where(Job.kind == WEBHOOK_JOB)).all()
        assert [(j.payload["webhook_id"], j.payload["event"], j.payload["data"]) for j in jobs] == [
            (
                sub_hook.json()["id"],
                "list.subscribed",
                {"email": "ann@example.com", "list_id": lid, "list": "News", "status": "active"},
            )
        ]
