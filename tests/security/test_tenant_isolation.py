"""Tenant isolation at every edge: account A's credentials, naming account B's ids, emails, utrs and list ids,
get each vendor's not-found (or auth) answer, and B's data is unchanged (no row anywhere created, deleted or
moved through the ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from herald.lists.service import ListService
from herald.optin.service import OptinRuleService
from herald.sends.service import SendService
from tests.conftest import auth, make_account
from tests.optin.factories import make_message
from tests.security import wire
from tests.sends.factory import add_contact, send_in, world

B_EMAIL = "bee@example.com"


@dataclass
class Tenant:
    """Account B's objects, by the ids and keys a caller would name them."""

    creds: dict[str, Any]
    address_id: int
    contact_id: int
    list_id: int
    subscription_id: int
    send_id: int
    utr: str
    sender_id: int
    topic_id: int
    segment_id: int
    type_id: int
    message_id: int
    rule_id: int
    webhook_id: int


@pytest.fixture
def a(container: Container) -> dict[str, Any]:
    """The intruding account's credentials."""
    return make_account(container, "intruder")


@pytest.fixture
def b(container: Container, client: TestClient) -> Tenant:
    """Account B with one of everything."""
    creds = make_account(container, "victim")
    aid = creds["account_id"]
    actor = Actor(account_id=aid, source="test", user_id=creds["user_id"], is_admin=True)
    with container.transaction() as s:
        w = world(s, aid)
        contact = add_contact(s, aid, B_EMAIL, type_id=w.type_id, status="opted_in")
        lists = ListService(s, actor, hash_key=container.hash_key)
        mailing_list = lists.create_list("B list")
        sub = lists.subscribe(mailing_list.id, B_EMAIL)
        send = SendService(s, actor).create(send_in(w))
        address_id = ConsentService(s, actor).get(B_EMAIL).id
        ids = (contact.id, mailing_list.id, sub.id, send.id, send.utr)
    message_id = make_message(container, aid)
    with container.transaction() as s:
        rule = OptinRuleService(s, actor).create(list_id=ids[1], message_id=message_id, name="B rule")
        rule_id = rule.id
    r = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "secret": "b-hook-secret"}, headers=auth(creds)
    )
    assert r.status_code == 201, r.text
    contact_id, list_id, sub_id, send_id, utr = ids
    return Tenant(
        creds, address_id, contact_id, list_id, sub_id, send_id, utr, w.sender_id, w.topic_id, w.segment_id,
        w.type_id, message_id, rule_id, r.json()["id"],
    )  # fmt: skip


def _b_status(container: Container, b: Tenant) -> tuple[str, str | None]:
    with container.transaction() as s:
        actor = Actor(account_id=b.creds["account_id"], source="test")
        addr = ConsentService(s, actor).get(B_EMAIL)
        sub = ListService(s, actor).find_subscription(b.list_id, B_EMAIL)
        return addr.status, sub.status if sub else None


class Unchanged:
    """Asserts that nothing at all changed in the database while the block ran (bar Sign-Up.to nonces)."""

    def __init__(self, container: Container, b: Tenant, *, spent: frozenset[str] = frozenset()) -> None:
        self.container, self.b, self.spent = container, b, spent

    def _state(self) -> Any:
        counts = {k: v for k, v in wire.row_counts(self.container).items() if k not in self.spent}
        return counts, _b_status(self.container, self.b)

    def __enter__(self) -> Unchanged:
        self.before = self._state()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert self._state() == self.before


def test_native_api_never_reads_or_changes_another_accounts_objects(
    client: TestClient, container: Container, a: dict[str, Any], b: Tenant
) -> None:
    calls = [
        ("GET", f"/contacts/{b.contact_id}", None),
        ("PATCH", f"/contacts/{b.contact_id}", {"first_name": "Mallory"}),
        ("DELETE", f"/contacts/{b.contact_id}", None),
        ("GET", f"/segments/{b.segment_id}/contacts", None),
        ("GET", f"/lists/{b.list_id}/subscriptions", None),
        ("POST", f"/lists/{b.list_id}/subscriptions", {"email": "x@example.com", "status": "active"}),
        ("GET", f"/addresses/{B_EMAIL}", None),
        ("GET", f"/addresses/{B_EMAIL}/events", None),
        ("GET", f"/addresses/{B_EMAIL}/export", None),
        ("DELETE", f"/addresses/{B_EMAIL}", None),
        ("GET", f"/single-sends/{b.send_id}", None),
        ("PATCH", f"/single-sends/{b.send_id}", {"single_send_name": "stolen"}),
        ("DELETE", f"/single-sends/{b.send_id}", None),
        ("POST", f"/single-sends/{b.send_id}/duplicate", None),
        ("POST", f"/single-sends/{b.send_id}/schedule", None),
        ("POST", f"/single-sends/{b.send_id}/cancel", None),
        ("GET", f"/single-sends/{b.send_id}/deliveries", None),
        ("PATCH", f"/messages/{b.message_id}", {"name": "stolen"}),
        ("DELETE", f"/messages/{b.message_id}", None),
        ("GET", f"/optin-automations/{b.rule_id}", None),
        ("PATCH", f"/optin-automations/{b.rule_id}", {"name": "stolen"}),
        ("DELETE", f"/optin-automations/{b.rule_id}", None),
        ("DELETE", f"/webhooks/{b.webhook_id}", None),
    ]
    with Unchanged(container, b):
        for method, path, body in calls:
            r = client.request(method, "/api/v1" + path, json=body, headers=auth(a))
            assert r.status_code in (404, 422), (method, path, r.status_code, r.text)
            # Nothing of B's leaks (a 404 may echo the email the caller sent, nothing more).
            assert not any(leak in r.text for leak in ("B list", "Birthday Invite", "victim", "opted_in")), r.text
    # A may record its own opt-out for the same email: that is A's address row, and B's stays as it was.
    r = client.put(f"/api/v1/addresses/{B_EMAIL}/status", json={"status": "opted_out"}, headers=auth(a))
    assert r.status_code == 200 and r.json()["lists"] == []
    assert _b_status(container, b) == ("opted_in", "active")
    # Lists are per account: nothing of B's shows in A's lists.
    for path in ("/contacts", "/lists", "/senders", "/topics", "/segments", "/messages", "/single-sends", "/webhooks"):
        assert client.get("/api/v1" + path, headers=auth(a)).json()["items"] == [], path
    # Creating with B's ids is refused too.
    with Unchanged(container, b):
        r = client.post(
            "/api/v1/single-sends",
            json={
                "single_send_name": "n",
                "subject": "s",
                "preheader": "p",
                "sender_id": b.sender_id,
                "unsubscribe_group_id": b.topic_id,
                "recipient_id": [f"contacts_{b.type_id}"],
            },  # fmt: skip
            headers=auth(a),
        )
        assert r.status_code in (404, 422), r.text
        r = client.post(
            "/api/v1/optin-automations", json={"list_id": b.list_id, "message_id": b.message_id}, headers=auth(a)
        )
        assert r.status_code in (404, 422), r.text


def test_allclients_never_reads_or_changes_another_accounts_addresses(
    client: TestClient, container: Container, a: dict[str, Any], b: Tenant
) -> None:
    with Unchanged(container, b):
        for path, fields in ((wire.ALLCLIENTS_GET, {}), (wire.ALLCLIENTS_SET, {"status": "2"})):
            r = wire.allclients(client, a, path, email=B_EMAIL, **fields)
            assert r.json() == {"error": "Email Address Not Found"}
        # B's accountid with A's apikey is an authentication failure.
        forged = {
            **a,
            "allclients": {"accountid": b.creds["allclients"]["accountid"], "apikey": a["allclients"]["apikey"]},
        }
        r = wire.allclients(client, forged, wire.ALLCLIENTS_SET, email=B_EMAIL, status="2")
        assert r.json() == {"error": "Authentication failed"}
    # AddContact with B's email makes a contact in A only; B's contact and address are untouched.
    before = _b_status(container, b)
    r = wire.allclients(client, a, wire.ALLCLIENTS_ADD, email=B_EMAIL, firstname="Mallory")
    assert r.json()["message"] == "Success" and r.json()["contactid"] != b.contact_id
    assert _b_status(container, b) == before
    r = client.get(f"/api/v1/contacts/{b.contact_id}", headers=auth(b.creds))
    assert r.json()["first_name"] is None


def test_mailkit_never_reads_or_changes_another_accounts_addresses(
    client: TestClient, container: Container, a: dict[str, Any], b: Tenant
) -> None:
    denied = {"error_status": 1, "error": "Invalid ID_email or email"}
    with Unchanged(container, b):
        for function in (wire.GETSTATUS, wire.UNSUBSCRIBE):
            assert wire.mailkit_json(client, a, function, email=B_EMAIL).json() == denied
            assert wire.mailkit_json(client, a, function, ID_email=b.address_id).json() == denied
            assert wire.mailkit_rpc(client, a, function, B_EMAIL) == denied["error"]
            assert wire.mailkit_rpc(client, a, function, b.address_id) == denied["error"]
        forged = {**a, "mailkit": {"client_id": b.creds["account_id"], "client_md5": a["mailkit"]["client_md5"]}}
        assert wire.mailkit_json(client, forged, wire.UNSUBSCRIBE, email=B_EMAIL).json()["error"] == "Unauthorized"


def test_skycore_never_reads_or_changes_another_accounts_lists(
    client: TestClient, container: Container, a: dict[str, Any], b: Tenant
) -> None:
    with Unchanged(container, b):
        for action in ("unsubscribeEmail", "subscribeEmail"):
            for email in (B_EMAIL, "ALL", "new@example.com"):
                r = wire.skycore(client, a, action, b.list_id, email)
                assert "<ERRORCODE>E912</ERRORCODE>" in r.text, r.text


def test_alls_never_reads_or_changes_another_accounts_sends(
    client: TestClient, container: Container, a: dict[str, Any], b: Tenant
) -> None:
    with Unchanged(container, b):
        assert wire.alls(client, a, "GET", "/api/single-send/details", utr=b.utr).json()["errors"] == "Record not found"
        for method, path in (
            ("POST", "/api/single/send/duplicate"),
            ("GET", "/api/single/send/duplicate"),
            ("DELETE", "/api/single/send/delete"),
        ):
            assert wire.alls(client, a, method, path, utr=b.utr).json() == {
                "status": "failed",
                "errors": "Record not found",
            }
        r = wire.alls(client, a, "POST", "/api/single/send/bulk-delete", strIds=[b.send_id])
        assert r.json() == {"status": "failed", "errors": "Record not found"}
        update = {
            "utr": b.utr, "single_send_name": "stolen", "sender_id": b.sender_id, "subject": "s", "preheader": "p",
            "unsubscribe_group_id": b.topic_id, "schedule_type": "1", "schedule_date": "2099-01-01",
            "schedule_time": "10:00:00", "recipient_id": [f"contacts_{b.type_id}"],
        }  # fmt: skip
        r = wire.alls(client, a, "POST", "/api/single/send/update", **update)
        assert r.json()["status"] == "failed", r.text
        create = {k: v for k, v in update.items() if k != "utr"}
        r = wire.alls(client, a, "POST", "/api/single/send/create", **create)
        assert r.json()["status"] == "failed", r.text
        assert "sender_id" in r.json()["errors"], r.text
    for path, key in (
        ("/api/single-send/list", "singleSends"),
        ("/api/sender/list", "senders"),
        ("/api/unsubscribes-groups", "unsubscribeGroups"),
        ("/api/segment/list", "segments"),
        ("/api/contacts/list", "contacts"),
        ("/api/contacts-type", "contactTypes"),
        ("/api/global-unsubscribes", "globalUnsubscribes"),
    ):
        assert wire.alls(client, a, "GET", path).json()["message"][key] == [], path


def test_signupto_never_reads_or_changes_another_accounts_resources(
    client: TestClient, container: Container, a: dict[str, Any], b: Tenant
) -> None:
    sut = wire.Sut(client, a)

    def refused(r: Any) -> None:
        assert r.status_code in (400, 403, 404), r.text
        assert r.json()["status"] == "error"

    def empty(r: Any) -> None:
        assert r.status_code in (200, 404), r.text
        if r.status_code == 200:
            assert r.json()["response"]["data"] == [], r.text

    with Unchanged(container, b, spent=frozenset({"used_nonces"})):
        empty(sut.call("GET", "list", {"id": b.list_id}))
        empty(sut.call("GET", "subscriber", {"id": b.contact_id}))
        empty(sut.call("GET", "subscriber", {"email": B_EMAIL}))
        empty(sut.call("GET", "subscription", {"list_id": b.list_id}))
        empty(sut.call("GET", "subscription", {"id": b.subscription_id}))
        empty(sut.call("GET", "emailMessage", {"id": b.message_id}))
        empty(sut.call("GET", "optinAutomation", {"id": b.rule_id}))
        refused(sut.call("PUT", "optinAutomation", {"id": b.rule_id, "name": "stolen"}))
        refused(sut.call("DELETE", "optinAutomation", {"id": b.rule_id}))
        refused(sut.call("DELETE", "subscription", {"id": b.subscription_id}))
        refused(sut.call("POST", "subscription", {"subscriber_id": b.contact_id, "list_id": b.list_id}))
        refused(sut.call("POST", "emailOptIn", {"subscription_id": b.subscription_id}))
        refused(sut.call("POST", "optinAutomation", {"list_id": b.list_id, "message_id": b.message_id}))
        # B's cid with A's key: the signature does not verify.
        forged = wire.Sut(client, {"signupto": {**a["signupto"], "cid": b.creds["account_id"]}})
        r = forged.call("GET", "list")
        assert r.status_code == 401 and r.json()["status"] == "error"
