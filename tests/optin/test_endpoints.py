"""Native /optin-automations: every seed 004 rule through the real ASGI app."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from herald.container import Container
from tests.conftest import auth, make_user
from tests.optin.factories import (
    delete_message,
    grant,
    make_category,
    make_list,
    make_message,
    message,
    restrict_folders,
)

URL = "/api/v1/optin-automations"


def _rule(client: TestClient, creds: dict[str, Any], **body: Any) -> Any:
    return client.post(URL, json=body, headers=auth(creds))


def test_create_answers_seed_shape_with_generated_summary(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    lid = make_list(container, account["account_id"])
    mid = make_message(container, account["account_id"])
    r = _rule(client, account, list_id=lid, message_id=mid, name="Summer Competition Optin")
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "list_id", "message_id", "name", "paused", "summary", "user_id", "cdate", "mdate"}
    assert body["list_id"] == lid and body["message_id"] == mid and body["paused"] is False
    assert body["user_id"] == account["user_id"]
    assert body["summary"] == (
        "As soon as possible after a subscriber is added to the list 'Summer Competition', send the subscriber "
        "the opt-in email campaign 'Summer Competition Confirmation'"
    )
    assert isinstance(body["cdate"], int) and body["cdate"] == body["mdate"]
    assert message(container, mid).locked is True
    got = client.get(f"{URL}/{body['id']}", headers=auth(account)).json()
    assert got == body
    assert client.get(URL, headers=auth(account)).json()["items"] == [body]


def test_list_id_must_be_sent_and_null_makes_one_catch_all(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    mid = make_message(container, account["account_id"])
    r = _rule(client, account, message_id=mid, name="no list")
    assert r.status_code == 422 and r.json()["field"] == "list_id"
    r = _rule(client, account, list_id=None, message_id=mid, name="catch all")
    assert r.status_code == 201 and r.json()["list_id"] is None
    assert "any list" in r.json()["summary"]
    r = _rule(client, account, list_id=None, message_id=mid, name="second catch all")
    assert r.status_code == 409
    assert len(client.get(URL, headers=auth(account)).json()["items"]) == 1


def test_one_rule_per_list(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    lid = make_list(container, account["account_id"])
    mid = make_message(container, account["account_id"])
    assert _rule(client, account, list_id=lid, message_id=mid, name="a").status_code == 201
    r = _rule(client, account, list_id=lid, message_id=mid, name="b")
    assert r.status_code == 409 and r.json()["field"] == "list_id"


def test_message_must_be_customoptin_and_of_the_account(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    lid = make_list(container, account["account_id"])
    plain = make_message(container, account["account_id"], customoptin=False)
    foreign = make_message(container, other_account["account_id"])
    gone = make_message(container, account["account_id"])
    delete_message(container, gone)
    for mid in (plain, foreign, gone, 999999):
        r = _rule(client, account, list_id=lid, message_id=mid, name="x")
        assert r.status_code == 422 and r.json()["field"] == "message_id", (mid, r.text)
    assert message(container, plain).locked is False
    assert client.get(URL, headers=auth(account)).json()["items"] == []


def test_list_of_another_account_or_unknown_is_refused(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    foreign_list = make_list(container, other_account["account_id"])
    mid = make_message(container, account["account_id"])
    for lid in (foreign_list, 424242):
        r = _rule(client, account, list_id=lid, message_id=mid, name="x")
        assert r.status_code == 422 and r.json()["field"] == "list_id"
    r = _rule(client, account, list_id="abc", message_id=mid, name="x")
    assert r.status_code == 422


def test_list_id_cannot_change_and_other_fields_can(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    lid, lid2 = make_list(container, aid), make_list(container, aid, "Other")
    mid, mid2 = make_message(container, aid), make_message(container, aid, "Second Confirmation")
    rule = _rule(client, account, list_id=lid, message_id=mid, name="a").json()
    r = client.patch(f"{URL}/{rule['id']}", json={"list_id": lid2}, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == "list_id"
    r = client.patch(f"{URL}/{rule['id']}", json={"list_id": None}, headers=auth(account))
    assert r.status_code == 422
    r = client.patch(
        f"{URL}/{rule['id']}", json={"message_id": mid2, "name": "b", "paused": True}, headers=auth(account)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["list_id"], body["message_id"], body["name"], body["paused"]) == (lid, mid2, "b", True)
    assert "'Second Confirmation'" in body["summary"]
    assert message(container, mid2).locked is True
    r = client.patch(f"{URL}/{rule['id']}", json={"summary": "Mine"}, headers=auth(account))
    assert r.json()["summary"] == "Mine"


def test_only_creator_or_admin_may_change_or_delete(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    alice, bob = make_user(container, aid, "alice"), make_user(container, aid, "bob")
    boss = make_user(container, aid, "boss", admin=True)
    rule = _rule(client, alice, list_id=make_list(container, aid), message_id=make_message(container, aid), name="a")
    rid = rule.json()["id"]
    assert rule.json()["user_id"] == alice["user_id"]
    assert client.patch(f"{URL}/{rid}", json={"name": "bob's"}, headers=auth(bob)).status_code == 403
    assert client.delete(f"{URL}/{rid}", headers=auth(bob)).status_code == 403
    assert client.get(f"{URL}/{rid}", headers=auth(bob)).json()["name"] == "a"
    assert client.patch(f"{URL}/{rid}", json={"name": "alice's"}, headers=auth(alice)).status_code == 200
    assert client.patch(f"{URL}/{rid}", json={"name": "boss's"}, headers=auth(boss)).status_code == 200
    assert client.delete(f"{URL}/{rid}", headers=auth(boss)).status_code == 204
    assert client.get(f"{URL}/{rid}", headers=auth(alice)).status_code == 404


def test_other_account_sees_404(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    rid = _rule(client, account, list_id=None, message_id=make_message(container, aid), name="a").json()["id"]
    h = auth(other_account)
    assert client.get(f"{URL}/{rid}", headers=h).status_code == 404
    assert client.patch(f"{URL}/{rid}", json={"name": "x"}, headers=h).status_code == 404
    assert client.delete(f"{URL}/{rid}", headers=h).status_code == 404
    assert client.get(URL, headers=h).json()["items"] == []
    assert client.get(f"{URL}/{rid}", headers=auth(account)).json()["name"] == "a"
    assert client.get(URL, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_paused_rule_cannot_unpause_onto_deleted_message(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    mid, mid2 = make_message(container, aid), make_message(container, aid, "Fresh")
    rid = _rule(client, account, list_id=None, message_id=mid, name="a", paused=True).json()["id"]
    delete_message(container, mid)
    assert client.get(f"{URL}/{rid}", headers=auth(account)).json()["paused"] is True  # delete does not touch it
    r = client.patch(f"{URL}/{rid}", json={"paused": False}, headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == "paused"
    assert client.get(f"{URL}/{rid}", headers=auth(account)).json()["paused"] is True
    r = client.patch(f"{URL}/{rid}", json={"paused": False, "message_id": mid2}, headers=auth(account))
    assert r.status_code == 200 and r.json()["paused"] is False


def test_deleting_message_does_not_pause_rule(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    mid = make_message(container, aid)
    rid = _rule(client, account, list_id=None, message_id=mid, name="a").json()["id"]
    delete_message(container, mid)
    r = client.get(f"{URL}/{rid}", headers=auth(account)).json()
    assert r["paused"] is False and r["message_id"] == mid
    # Renaming a live rule whose message is gone is fine; only un-pausing needs a valid message.
    assert client.patch(f"{URL}/{rid}", json={"name": "renamed"}, headers=auth(account)).status_code == 200


def test_folder_restrictions(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    aid = account["account_id"]
    mine, theirs = make_category(container, aid, "Mine"), make_category(container, aid, "Theirs")
    l_mine = make_list(container, aid, "In mine", category_id=mine)
    l_theirs = make_list(container, aid, "In theirs", category_id=theirs)
    mid = make_message(container, aid)
    user = make_user(container, aid, "restricted")
    grant(container, user["user_id"], mine)
    # Off by default: any list is fine.
    r = _rule(client, user, list_id=l_theirs, message_id=mid, name="before")
    assert r.status_code == 201
    before = r.json()["id"]
    restrict_folders(container, aid)
    assert client.get(f"{URL}/{before}", headers=auth(user)).status_code == 404
    assert client.get(URL, headers=auth(user)).json()["items"] == []
    r = _rule(client, user, list_id=l_mine, message_id=mid, name="ok")
    assert r.status_code == 201
    assert [i["name"] for i in client.get(URL, headers=auth(user)).json()["items"]] == ["ok"]
    assert client.delete(f"{URL}/{before}", headers=auth(account)).status_code == 204
    r = _rule(client, user, list_id=l_theirs, message_id=mid, name="nope")
    assert r.status_code == 403
    # Admins are not restricted.
    assert _rule(client, account, list_id=l_theirs, message_id=mid, name="admin").status_code == 201
    # A message in a folder the user lacks is inaccessible.
    hidden = make_message(container, aid, "Hidden", category_id=theirs)
    rid = client.get(URL, headers=auth(user)).json()["items"][0]["id"]
    r = client.patch(f"{URL}/{rid}", json={"message_id": hidden}, headers=auth(user))
    assert r.status_code == 422 and r.json()["field"] == "message_id"


def test_bad_bodies(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    mid = make_message(container, account["account_id"])
    h = auth(account)
    assert client.post(URL, json={"list_id": None, "message_id": mid}, headers=h).status_code == 422
    assert client.post(URL, json={"list_id": None, "message_id": mid, "name": " "}, headers=h).status_code == 422
    r = client.post(URL, json={"list_id": None, "message_id": mid, "name": "a", "bogus": 1}, headers=h)
    assert r.status_code == 422
    assert client.patch(f"{URL}/999", json={"name": "x"}, headers=h).status_code == 404
    assert client.get(URL, headers=h).json()["items"] == []
