"""Native export and erasure routes, and an erased spam-reporter re-created through every edge stays suppressed.

Edges another feature builds are looked up in the app; one that is not there yet is skipped LOUDLY (`!!!`),
never silently.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.actor import Actor
from herald.consent.eligibility import eligible
from herald.consent.models import Address
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from tests.conftest import auth
from tests.consent.privacy_factory import EMAIL, address_status, scan, seed_person


def _routes(app: Any, prefix: str = "") -> set[tuple[str, str]]:
    """(METHOD, path) of every route, through included routers and the mounted native API."""
    found: set[tuple[str, str]] = set()
    for route in getattr(app, "routes", ()):
        included = getattr(route, "original_router", None)
        if included is not None:
            found |= _routes(included, prefix)
        elif getattr(route, "methods", None):
            found |= {(m, prefix + route.path) for m in route.methods}
        elif getattr(route, "app", None) is not None and getattr(route, "path", None):
            found |= _routes(route.app, prefix + route.path)
    return found


def need(app: Any, method: str, path: str, what: str) -> None:
    """Skip loudly when another feature's edge is not built yet."""
    if (method, path) not in _routes(app):
        pytest.skip(f"!!! {what} ({method} {path}) is not built yet: re-suppression through it is NOT verified")


def _eligible_emails(container: Container, account_id: int) -> list[str]:
    with container.transaction() as s:
        stmt = select(Address.email).where(Address.account_id == account_id, eligible(utcnow()))
        return list(s.scalars(stmt))


def _erased_spam_reporter(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    seed_person(container, account["account_id"])
    r = client.delete(f"/api/v1/addresses/{EMAIL}", headers=auth(account))
    assert r.status_code == 200, r.text
    assert address_status(container, account["account_id"], EMAIL) is None


def _assert_suppressed(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    h = auth(account)
    body = client.get(f"/api/v1/addresses/{EMAIL}", headers=h).json()
    assert body["status"] == "spam_reported"
    events = client.get(f"/api/v1/addresses/{EMAIL}/events", headers=h).json()["items"]
    assert [(e["from_status"], e["to_status"]) for e in events][:1] == [("unknown", "spam_reported")]
    r = client.put(f"/api/v1/addresses/{EMAIL}/status", json={"status": "opted_in"}, headers=h)
    assert r.status_code == 409 and r.json()["current_status"] == "spam_reported"
    assert EMAIL not in _eligible_emails(container, account["account_id"])


def test_export_route_answers_the_whole_document(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    r = client.get("/api/v1/addresses/%20Zed.Quux_9@EXAMPLE.com/export", headers=auth(account))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["email"] == EMAIL and doc["contact"]["first_name"] == "Zebulon"
    assert [d["id"] for d in doc["deliveries"]] == [person.delivery_id]
    for key in ("subscriptions", "optin_records", "topic_unsubscribes", "consent_events", "inbound_messages"):
        assert doc[key], key
    assert "/addresses/{email}/export" in client.get("/api/v1/openapi.json").json()["paths"]


def test_unknown_foreign_and_unauthenticated_requests_change_nothing(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    before = scan(container, person.needles)
    for method in ("GET", "DELETE"):
        path = "/api/v1/addresses/nobody@example.com" + ("/export" if method == "GET" else "")
        r = client.request(method, path, headers=auth(account))
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        foreign = f"/api/v1/addresses/{EMAIL}" + ("/export" if method == "GET" else "")
        assert client.request(method, foreign, headers=auth(other_account)).status_code == 404
        assert client.request(method, foreign).status_code == 401
        assert client.request(method, foreign, headers={"Authorization": "Bearer hrl_wrong"}).status_code == 401
    r = client.delete("/api/v1/addresses/not-an-email", headers=auth(account))
    assert r.status_code == 422 and r.json()["field"] == "email"
    assert scan(container, person.needles) == before


def test_delete_erases_and_the_address_is_gone(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    h = auth(account)
    r = client.delete(f"/api/v1/addresses/{EMAIL.upper()}", headers=h)
    assert r.status_code == 200
    assert r.json() == {
        "email": EMAIL,
        "erased": True,
        "suppressed": "spam_reported",
        "contact_removed": True,
        "deliveries_scrubbed": 1,
        "ledger_events_anonymised": 3,
    }
    assert scan(container, person.needles) == []
    assert client.get(f"/api/v1/addresses/{EMAIL}", headers=h).status_code == 404
    assert client.get(f"/api/v1/addresses/{EMAIL}/export", headers=h).status_code == 404
    assert client.delete(f"/api/v1/addresses/{EMAIL}", headers=h).status_code == 404


def test_recreated_by_status_change_stays_suppressed(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    _erased_spam_reporter(client, container, account)
    r = client.put(f"/api/v1/addresses/{EMAIL}/status", json={"status": "opted_in"}, headers=auth(account))
    # Re-created in its suppressed state, the opt-in is refused (and the refused request leaves nothing behind).
    assert r.status_code == 409 and r.json()["current_status"] == "spam_reported"
    assert address_status(container, account["account_id"], EMAIL) is None
    r = client.put(f"/api/v1/addresses/{EMAIL}/status", json={"status": "spam_reported"}, headers=auth(account))
    assert r.status_code == 200
    _assert_suppressed(client, container, account)


def test_recreated_by_native_contact_create_stays_suppressed(
    client: TestClient, app: Any, container: Container, account: dict[str, Any]
) -> None:
    need(app, "POST", "/api/v1/contacts", "native contacts API")
    _erased_spam_reporter(client, container, account)
    r = client.post("/api/v1/contacts", json={"email": EMAIL, "first_name": "Zebulon"}, headers=auth(account))
    assert r.status_code == 201, r.text
    _assert_suppressed(client, container, account)


def test_recreated_by_list_subscription_stays_suppressed(
    client: TestClient, app: Any, container: Container, account: dict[str, Any]
) -> None:
    need(app, "POST", "/api/v1/lists/{list_id}/subscriptions", "native list subscriptions API")
    _erased_spam_reporter(client, container, account)
    h = auth(account)
    list_id = client.post("/api/v1/lists", json={"name": "News"}, headers=h).json()["id"]
    r = client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": EMAIL, "status": "active"}, headers=h)
    # Refused with the suppressing state, and nothing is left behind to mail.
    assert r.status_code == 409 and r.json()["current_status"] == "spam_reported", r.text
    assert address_status(container, account["account_id"], EMAIL) is None
    assert client.get(f"/api/v1/lists/{list_id}/subscriptions", headers=h).json()["items"] == []


def test_allclients_recreate_and_opt_in_stays_suppressed(
    client: TestClient, app: Any, container: Container, account: dict[str, Any]
) -> None:
    need(app, "POST", "/api/2/AddContact.aspx", "AllClients AddContact")
    _erased_spam_reporter(client, container, account)
    keys = {"accountid": account["allclients"]["accountid"], "apikey": account["allclients"]["apikey"]}
    # SetOptInStatus acts only on known addresses: the erased one is not found and nothing is created.
    r = client.post("/api/2/SetOptInStatus.aspx?response_type=json", data={**keys, "email": EMAIL, "status": "1"})
    assert r.json() == {"error": "Email Address Not Found"}
    assert address_status(container, account["account_id"], EMAIL) is None
    r = client.post("/api/2/AddContact.aspx?response_type=json", data={**keys, "email": EMAIL, "firstname": "Z"})
    assert r.json()["message"] == "Success", r.text
    r = client.post("/api/2/SetOptInStatus.aspx?response_type=json", data={**keys, "email": EMAIL, "status": "1"})
    assert "Not allowed for current status Spam Report" in r.json()["error"]
    _assert_suppressed(client, container, account)


def test_mailkit_cannot_bring_an_erased_address_back(
    client: TestClient, app: Any, container: Container, account: dict[str, Any]
) -> None:
    need(app, "POST", "/json.fcgi", "Mailkit JSON API")
    _erased_spam_reporter(client, container, account)
    envelope = {"id": account["mailkit"]["client_id"], "md5": account["mailkit"]["client_md5"]}
    for function in ("mailkit.email.unsubscribe", "mailkit.email.unsubscribe.getstatus"):
        r = client.post("/json.fcgi", json={**envelope, "function": function, "parameters": {"email": EMAIL}})
        assert r.json()["error_status"] == 1, r.text
    assert address_status(container, account["account_id"], EMAIL) is None
    # Known again (re-created by any path), it is suppressed and stays out of every audience.
    with container.transaction() as s:
        actor = Actor(account_id=account["account_id"], source="test")
        ConsentService(s, actor, hash_key=container.hash_key).ensure(EMAIL)
    r = client.post(
        "/json.fcgi", json={**envelope, "function": "mailkit.email.unsubscribe", "parameters": {"email": EMAIL}}
    )
    assert address_status(container, account["account_id"], EMAIL) == "spam_reported", r.text
    _assert_suppressed(client, container, account)


def test_skycore_subscribe_stays_suppressed(
    client: TestClient, app: Any, container: Container, account: dict[str, Any]
) -> None:
    need(app, "POST", "/API/wxml/1.3/index.php", "Skycore wxml subscribeEmail")
    _erased_spam_reporter(client, container, account)
    h = auth(account)
    list_id = client.post("/api/v1/lists", json={"name": "Sky"}, headers=h).json()["id"]
    xml = (
        f"<REQUEST><ACTION>subscribeEmail</ACTION><API_KEY>{account['skycore']['api_key']}</API_KEY>"
        f"<EMAIL>{EMAIL}</EMAIL><CAMPAIGNID>{list_id}</CAMPAIGNID></REQUEST>"
    )
    r = client.post("/API/wxml/1.3/index.php", data={"xml": xml})
    # Refused as a spam complainer (E917), though the address itself was erased.
    assert "<ERRORCODE>E917</ERRORCODE>" in r.text, r.text
    status = address_status(container, account["account_id"], EMAIL)
    assert status in (None, "spam_reported")
    assert EMAIL not in _eligible_emails(container, account["account_id"])


def test_signupto_subscriber_stays_suppressed(
    client: TestClient, app: Any, container: Container, account: dict[str, Any]
) -> None:
    need(app, "POST", "/v1/{resource}", "Sign-Up.to subscriber")
    import secrets
    from email.utils import formatdate
    from time import time

    try:
        from herald.dialects.signupto_auth import signature
    except ModuleNotFoundError:
        pytest.skip("!!! Sign-Up.to SuTHash signing (herald.dialects.signupto_auth) is not built yet")

    _erased_spam_reporter(client, container, account)
    cid, uid, key = (str(account["signupto"][k]) for k in ("cid", "uid", "api_key"))
    date, nonce = formatdate(time(), usegmt=True), secrets.token_hex(20)
    headers = {
        "Authorization": f'SuTHash signature="{signature("POST", "/v1/subscriber", date, cid, uid, nonce, key)}"',
        "Date": date,
        "X-SuT-CID": cid,
        "X-SuT-UID": uid,
        "X-SuT-Nonce": nonce,
    }
    r = client.post("/v1/subscriber", json={"email": EMAIL, "first_name": "Zebulon"}, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["response"]["data"]["email"] == EMAIL
    _assert_suppressed(client, container, account)


def test_recreated_spam_reporter_gets_no_delivery_when_a_send_launches(
    client: TestClient, app: Any, container: Container, account: dict[str, Any]
) -> None:
    need(app, "POST", "/api/v1/contacts", "native contacts API")
    from herald.sends.launcher import launch_due
    from herald.sends.models import Delivery, SingleSend
    from herald.sends.service import SendService
    from tests.sends.factory import actor, send_in, world

    _erased_spam_reporter(client, container, account)
    aid = account["account_id"]
    with container.transaction() as s:
        w = world(s, aid)
    h = auth(account)
    for address in (EMAIL, "fresh@example.com"):
        r = client.post("/api/v1/contacts", json={"email": address, "contact_type_id": w.type_id}, headers=h)
        assert r.status_code == 201, r.text
    with container.transaction() as s:
        send_id = SendService(s, actor(aid)).create(send_in(w, schedule_type=0)).id
    assert launch_due(container) == [send_id]
    with container.transaction() as s:
        rows = s.execute(select(Delivery.email, Delivery.status).where(Delivery.send_id == send_id)).all()
        # The launch records the re-created spam-reporter as suppressed: never queued, never sent.
        assert sorted((str(e), st) for e, st in rows) == [("fresh@example.com", "queued"), (EMAIL, "suppressed")]
        assert s.get_one(SingleSend, send_id).skipped == {"spam_reported": 1}
