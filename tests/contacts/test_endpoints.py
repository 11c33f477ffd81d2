"""Native /contacts, /contact-types and /segments routes through the real ASGI app."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from herald.contacts.models import Contact
from herald.container import Container
from tests.conftest import auth

API = "/api/v1"


def _count(container: Container) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Contact)) or 0)


def _type(client: TestClient, creds: dict[str, Any], name: str = "customers") -> int:
    r = client.post(f"{API}/contact-types", json={"name": name}, headers=auth(creds))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_create_get_list_patch_delete(client: TestClient, account: dict[str, Any], container: Container) -> None:
    h = auth(account)
    ctype = _type(client, account)
    body = {
        "email": "  Ann@Example.COM ",
        "first_name": "Ann",
        "age": 31,
        "birth_date": "1990-02-03",
        "contact_type_id": ctype,
        "fields": {"plan": "pro", "seats": 3},
    }
    r = client.post(f"{API}/contacts", json=body, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["email"] == "ann@example.com" and created["first_name"] == "Ann" and created["age"] == 31
    assert created["contact_type_id"] == ctype and created["fields"] == {"plan": "pro", "seats": 3}
    assert created["last_name"] is None
    cid = created["id"]
    assert client.get(f"{API}/contacts/{cid}", headers=h).json() == created
    # Creating a contact makes the email a known address, status unknown.
    addr = client.get(f"{API}/addresses/ann@example.com", headers=h)
    assert addr.status_code == 200 and addr.json()["status"] == "unknown"

    r = client.patch(
        f"{API}/contacts/{cid}", json={"last_name": "Lee", "fields": {"plan": None, "vip": True}}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["last_name"] == "Lee" and r.json()["first_name"] == "Ann"
    assert r.json()["fields"] == {"seats": 3, "vip": True}

    listed = client.get(f"{API}/contacts", params={"email": "ANN@example.com"}, headers=h).json()
    assert [c["id"] for c in listed["items"]] == [cid] and listed["next_cursor"] is None
    assert client.get(f"{API}/contacts", params={"email": "x@example.com"}, headers=h).json()["items"] == []

    assert client.delete(f"{API}/contacts/{cid}", headers=h).status_code == 204
    assert client.get(f"{API}/contacts/{cid}", headers=h).status_code == 404
    # The address and its ledger outlive the contact.
    assert client.get(f"{API}/addresses/ann@example.com", headers=h).status_code == 200


def test_known_address_keeps_its_status(client: TestClient, account: dict[str, Any]) -> None:
    h = auth(account)
    r = client.put(f"{API}/addresses/bob@example.com/status", json={"status": "opted_out"}, headers=h)
    assert r.status_code == 200
    assert client.post(f"{API}/contacts", json={"email": "bob@example.com"}, headers=h).status_code == 201
    assert client.get(f"{API}/addresses/bob@example.com", headers=h).json()["status"] == "opted_out"


def test_pagination(client: TestClient, account: dict[str, Any]) -> None:
    h = auth(account)
    for i in range(5):
        assert client.post(f"{API}/contacts", json={"email": f"p{i}@example.com"}, headers=h).status_code == 201
    first = client.get(f"{API}/contacts", params={"limit": 2}, headers=h).json()
    assert [c["email"] for c in first["items"]] == ["p0@example.com", "p1@example.com"]
    rest = client.get(f"{API}/contacts", params={"limit": 10, "cursor": first["next_cursor"]}, headers=h).json()
    assert [c["email"] for c in rest["items"]] == [f"p{i}@example.com" for i in (2, 3, 4)]
    assert rest["next_cursor"] is None
    assert client.get(f"{API}/contacts", params={"cursor": "garbage!"}, headers=h).status_code == 422
    assert client.get(f"{API}/contacts", params={"limit": 0}, headers=h).json()["field"] == "limit"


def test_duplicate_email_is_409_and_changes_nothing(
    client: TestClient, account: dict[str, Any], container: Container
) -> None:
    h = auth(account)
    assert client.post(f"{API}/contacts", json={"email": "a@example.com", "city": "Rome"}, headers=h).status_code == 201
    r = client.post(f"{API}/contacts", json={"email": " A@EXAMPLE.com", "city": "Oslo"}, headers=h)
    assert r.status_code == 409 and r.json()["field"] == "email"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _count(container) == 1
    other = client.post(f"{API}/contacts", json={"email": "b@example.com"}, headers=h).json()
    r = client.patch(f"{API}/contacts/{other['id']}", json={"email": "a@example.com"}, headers=h)
    assert r.status_code == 409 and r.json()["field"] == "email"
    assert client.get(f"{API}/contacts/{other['id']}", headers=h).json()["email"] == "b@example.com"


def test_bad_fields_are_422_naming_the_field(client: TestClient, account: dict[str, Any], container: Container) -> None:
    h = auth(account)
    cases = [
        ({"first_name": "x"}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.com", "first_name": "x" * 201}, "first_name"),
        ({"email": "a@example.com", "postal_code": "1" * 31}, "postal_code"),
        ({"email": "a@example.com", "age": -1}, "age"),
        ({"email": "a@example.com", "age": "old"}, "age"),
        ({"email": "a@example.com", "birth_date": "03/02/1990"}, "birth_date"),
        ({"email": "a@example.com", "join_date": "2024-02-30"}, "join_date"),
        ({"email": "a@example.com", "alt_email": "nope"}, "alt_email"),
        ({"email": "a@example.com", "shoe_size": 44}, "shoe_size"),
        ({"email": "a@example.com", "fields": {"x": {"nested": 1}}}, "fields.x"),
        ({"email": "a@example.com", "fields": {"x": "y" * 2001}}, "fields.x"),
        ({"email": "a@example.com", "contact_type_id": 999}, "contact_type_id"),
    ]
    for body, field in cases:
        r = client.post(f"{API}/contacts", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())
    assert _count(container) == 0
    assert client.get(f"{API}/addresses/a@example.com", headers=h).status_code == 404


def test_tenant_isolation(
    client: TestClient, account: dict[str, Any], other_account: dict[str, Any], container: Container
) -> None:
    h, oh = auth(account), auth(other_account)
    mine = client.post(f"{API}/contacts", json={"email": "a@example.com"}, headers=h).json()
    theirs_type = _type(client, other_account, "theirs")
    seg = client.post(f"{API}/segments", json={"name": "all", "rules": {"all": []}}, headers=h).json()
    # The same email is free in another account.
    assert client.post(f"{API}/contacts", json={"email": "a@example.com"}, headers=oh).status_code == 201
    for method, path in [
        ("GET", f"/contacts/{mine['id']}"),
        ("PATCH", f"/contacts/{mine['id']}"),
        ("DELETE", f"/contacts/{mine['id']}"),
        ("GET", f"/segments/{seg['id']}/contacts"),
    ]:
        r = client.request(method, f"{API}{path}", json={"city": "X"} if method == "PATCH" else None, headers=oh)
        assert r.status_code == 404, (method, path, r.text)
    assert client.get(f"{API}/contacts/{mine['id']}", headers=h).json()["city"] is None
    r = client.post(f"{API}/contacts", json={"email": "c@example.com", "contact_type_id": theirs_type}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "contact_type_id"
    r = client.patch(f"{API}/contacts/{mine['id']}", json={"contact_type_id": theirs_type}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "contact_type_id"
    assert [t["name"] for t in client.get(f"{API}/contact-types", headers=h).json()["items"]] == []
    assert [c["email"] for c in client.get(f"{API}/contacts", headers=oh).json()["items"]] == ["a@example.com"]
    assert client.get(f"{API}/segments", headers=oh).json()["items"] == []
    assert _count(container) == 2


def test_wrong_credentials_are_401(client: TestClient, account: dict[str, Any]) -> None:
    for method, path in [("GET", "/contacts"), ("POST", "/contacts"), ("GET", "/segments"), ("GET", "/contact-types")]:
        assert client.request(method, f"{API}{path}").status_code == 401
        r = client.request(method, f"{API}{path}", headers={"Authorization": "Bearer wrong"}, json={})
        assert r.status_code == 401


def test_unknown_ids_are_404(client: TestClient, account: dict[str, Any]) -> None:
    h = auth(account)
    assert client.get(f"{API}/contacts/999", headers=h).status_code == 404
    assert client.patch(f"{API}/contacts/999", json={"city": "x"}, headers=h).status_code == 404
    assert client.delete(f"{API}/contacts/999", headers=h).status_code == 404
    assert client.get(f"{API}/segments/999/contacts", headers=h).status_code == 404


def test_contact_types(client: TestClient, account: dict[str, Any]) -> None:
    h = auth(account)
    ids = [_type(client, account, n) for n in ("a", "b")]
    listed = client.get(f"{API}/contact-types", headers=h).json()
    assert [(t["id"], t["name"]) for t in listed["items"]] == list(zip(ids, ["a", "b"], strict=True))
    for bad in ({}, {"name": ""}, {"name": "x" * 201}, {"name": "   "}):
        r = client.post(f"{API}/contact-types", json=bad, headers=h)
        assert r.status_code == 422 and r.json()["field"] == "name", bad
    assert len(client.get(f"{API}/contact-types", headers=h).json()["items"]) == 2


def test_segments_match_contacts(client: TestClient, account: dict[str, Any]) -> None:
    h = auth(account)
    for email, country, age, fields in [
        ("a@example.com", "DE", 30, {"vip": True}),
        ("b@example.com", "DE", 20, {}),
        ("c@example.com", "FR", 40, {"vip": True}),
    ]:
        body = {"email": email, "country": country, "age": age, "fields": fields}
        assert client.post(f"{API}/contacts", json=body, headers=h).status_code == 201
    rules = {
        "any": [
            {"all": [{"field": "country", "op": "eq", "value": "DE"}, {"field": "age", "op": "gt", "value": 25}]},
            {"field": "fields.vip", "op": "eq", "value": True},
        ]
    }
    seg = client.post(f"{API}/segments", json={"name": "picked", "rules": rules}, headers=h)
    assert seg.status_code == 201, seg.text
    assert seg.json()["rules"] == rules
    sid = seg.json()["id"]
    got = client.get(f"{API}/segments/{sid}/contacts", params={"limit": 1}, headers=h).json()
    assert [c["email"] for c in got["items"]] == ["a@example.com"]
    more = client.get(f"{API}/segments/{sid}/contacts", params={"cursor": got["next_cursor"]}, headers=h).json()
    assert [c["email"] for c in more["items"]] == ["c@example.com"] and more["next_cursor"] is None
    assert [s["id"] for s in client.get(f"{API}/segments", headers=h).json()["items"]] == [sid]


def test_bad_segment_rules_name_the_path(client: TestClient, account: dict[str, Any]) -> None:
    h = auth(account)
    rules = {"all": [{"field": "country", "op": "eq", "value": "DE"}, {"field": "age", "op": "like", "value": 1}]}
    r = client.post(f"{API}/segments", json={"name": "bad", "rules": rules}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "rules.all[1].op"
    r = client.post(f"{API}/segments", json={"name": "bad", "rules": "DE"}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "rules"
    assert client.get(f"{API}/segments", headers=h).json()["items"] == []
