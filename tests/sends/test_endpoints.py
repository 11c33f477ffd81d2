"""Native /single-sends routes through the real ASGI app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.container import Container
from herald.sends.launcher import launch_due
from herald.sends.models import SingleSend
from tests.conftest import auth, make_account
from tests.sends.factory import World, add_contact, world


@pytest.fixture
def w(container: Container, account: dict[str, Any]) -> World:
    with container.transaction() as s:
        w = world(s, account["account_id"])
        add_contact(s, w.account_id, "ann@example.com", type_id=w.type_id)
        add_contact(s, w.account_id, "bob@example.com", type_id=w.type_id, status="bounced")
        return w


def body(w: World, **extra: Any) -> dict[str, Any]:
    return {
        "template_id": 2,
        "sender_id": w.sender_id,
        "unsubscribe_group_id": w.topic_id,
        "single_send_name": "Birthday Invite",
        "subject": "welcome to birthday party",
        "preheader": "The party held on",
        "recipient_id": [f"contacts_{w.type_id}", f"segments_{w.segment_id}"],
        **extra,
    }


def test_create_get_list_patch_delete(client: TestClient, account: dict[str, Any], w: World) -> None:
    h = auth(account)
    r = client.post("/api/v1/single-sends", json=body(w), headers=h)
    assert r.status_code == 201, r.text
    send = r.json()
    assert (send["status"], send["status_name"], send["user_id"]) == (0, "initiate", account["user_id"])
    assert send["recipient_id"] == [f"contacts_{w.type_id}", f"segments_{w.segment_id}"]
    assert send["triggered"] == 0 and send["skipped"] == {}
    sid = send["id"]
    assert client.get(f"/api/v1/single-sends/{sid}", headers=h).json()["utr"] == send["utr"]
    r = client.patch(f"/api/v1/single-sends/{sid}", json={"subject": "New"}, headers=h)
    assert r.status_code == 200 and r.json()["subject"] == "New" and r.json()["preheader"] == "The party held on"
    listing = client.get("/api/v1/single-sends", headers=h).json()
    assert [s["id"] for s in listing["items"]] == [sid] and listing["next_cursor"] is None
    assert client.delete(f"/api/v1/single-sends/{sid}", headers=h).status_code == 204
    assert client.get(f"/api/v1/single-sends/{sid}", headers=h).status_code == 404


def test_pagination(client: TestClient, account: dict[str, Any], w: World) -> None:
    h = auth(account)
    ids = [client.post("/api/v1/single-sends", json=body(w), headers=h).json()["id"] for _ in range(3)]
    first = client.get("/api/v1/single-sends?limit=2", headers=h).json()
    assert [s["id"] for s in first["items"]] == ids[:2] and first["next_cursor"]
    second = client.get(f"/api/v1/single-sends?limit=2&cursor={first['next_cursor']}", headers=h).json()
    assert [s["id"] for s in second["items"]] == ids[2:] and second["next_cursor"] is None


def test_bad_input_is_a_problem_naming_the_field(
    client: TestClient, container: Container, account: dict[str, Any], w: World
) -> None:
    h = auth(account)
    cases = [
        ({"sender_id": 999999}, "sender_id"),
        ({"recipient_id": []}, "recipient_id"),
        ({"recipient_id": ["contacts_999999"]}, "recipient_id"),
        ({"subject": "Hi ((bogus))"}, "subject"),
        ({"schedule_type": 1, "schedule_date": "2999-01-01"}, "schedule_time"),
        ({"unknown": 1}, "unknown"),
    ]
    for extra, field in cases:
        r = client.post("/api/v1/single-sends", json=body(w, **extra), headers=h)
        assert r.status_code == 422, (extra, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field
    with container.transaction() as s:
        assert s.query(SingleSend).count() == 0


def test_schedule_launch_deliveries_and_refused_edits(
    client: TestClient, container: Container, account: dict[str, Any], w: World
) -> None:
    h = auth(account)
    sid = client.post("/api/v1/single-sends", json=body(w), headers=h).json()["id"]
    day = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    r = client.post(
        f"/api/v1/single-sends/{sid}/schedule",
        json={"schedule_date": day, "schedule_time": "08:00", "timezone": "America/New_York"},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["status"] == 1 and r.json()["timezone"] == "America/New_York"
    assert r.json()["scheduled_at"].startswith(day) or r.json()["scheduled_at"] > day
    r = client.post(f"/api/v1/single-sends/{sid}/schedule", json={"schedule_type": 0}, headers=h)
    assert r.status_code == 200
    assert launch_due(container) == [sid]
    send = client.get(f"/api/v1/single-sends/{sid}", headers=h).json()
    assert (send["status_name"], send["triggered"], send["skipped"]) == ("running", 1, {"bounced": 1})
    r = client.patch(f"/api/v1/single-sends/{sid}", json={"subject": "late"}, headers=h)
    assert r.status_code == 409 and r.json()["current_status"] == "running"
    items = client.get(f"/api/v1/single-sends/{sid}/deliveries", headers=h).json()["items"]
    assert sorted((d["email"], d["status"], d["error"]) for d in items) == [
        ("ann@example.com", "queued", None),
        ("bob@example.com", "suppressed", "bounced"),
    ]
    only = client.get(f"/api/v1/single-sends/{sid}/deliveries?status=suppressed", headers=h).json()["items"]
    assert [d["email"] for d in only] == ["bob@example.com"]
    r = client.post(f"/api/v1/single-sends/{sid}/pause", headers=h)
    assert r.status_code == 200 and r.json()["paused"] is True
    r = client.post(f"/api/v1/single-sends/{sid}/resume", headers=h)
    assert r.status_code == 200 and r.json()["paused"] is False
    r = client.post(f"/api/v1/single-sends/{sid}/cancel", headers=h)
    assert r.status_code == 200 and (r.json()["status"], r.json()["cancelled"]) == (3, True)
    r = client.post(f"/api/v1/single-sends/{sid}/cancel", headers=h)
    assert r.status_code == 409 and r.json()["current_status"] == "completed"
    r = client.post(f"/api/v1/single-sends/{sid}/duplicate", headers=h)
    assert r.status_code == 201
    copy = r.json()
    assert (copy["status"], copy["triggered"], copy["skipped"], copy["subject"]) == (
        0,
        0,
        {},
        "welcome to birthday party",
    )


def test_other_tenant_and_no_token(client: TestClient, container: Container, account: dict[str, Any], w: World) -> None:
    other = make_account(container, "other")
    sid = client.post("/api/v1/single-sends", json=body(w), headers=auth(account)).json()["id"]
    h = auth(other)
    for method, path in [
        ("GET", f"/api/v1/single-sends/{sid}"),
        ("PATCH", f"/api/v1/single-sends/{sid}"),
        ("DELETE", f"/api/v1/single-sends/{sid}"),
        ("POST", f"/api/v1/single-sends/{sid}/duplicate"),
        ("POST", f"/api/v1/single-sends/{sid}/cancel"),
        ("GET", f"/api/v1/single-sends/{sid}/deliveries"),
    ]:
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        assert client.request(method, path, headers=h, **kwargs).status_code == 404, path
    assert client.get("/api/v1/single-sends", headers=h).json()["items"] == []
    assert client.get("/api/v1/single-sends").status_code == 401
    assert client.get(f"/api/v1/single-sends/{sid}", headers=auth(account)).json()["status"] == 0
