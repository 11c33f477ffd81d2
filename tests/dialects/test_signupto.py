"""Sign-Up.to dialect at the wire: SuTHash/SuTToken auth, the envelope, optinAutomation's every rule, and
the sign-up → emailOptIn → confirmation flow through the real ASGI app."""

from __future__ import annotations

import json
import re
import secrets
from email.utils import formatdate
from time import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from herald.dialects.signupto_auth import signature
from herald.settings import Settings
from tests.conftest import auth, make_user
from tests.optin.factories import grant, make_category, restrict_folders
from tests.optin.test_sender import run_optin_jobs
from tests.smtp_sink import SmtpSink

SEED = {
    "id": 12345,
    "list_id": 39443,
    "message_id": 15487,
    "name": "Summer Competition Optin",
    "paused": False,
    "summary": "As soon as possible after a subscriber is added to the list 'Summer Competition', send the "
    "subscriber the opt-in email campaign 'Summer Competition Confirmation'",
    "user_id": 23456,
    "cdate": 1234966741,
    "mdate": 1234966741,
}


class Sut:
    """A Sign-Up.to client over the test client: signs every request as a real client does."""

    def __init__(self, client: TestClient, creds: dict[str, Any]) -> None:
        self.client = client
        self.cid, self.uid, self.key = (str(creds["signupto"][k]) for k in ("cid", "uid", "api_key"))

    def headers(
        self, verb: str, path: str, *, key: str | None = None, date: str | None = None, nonce: str = ""
    ) -> dict[str, str]:
        date = date or formatdate(time(), usegmt=True)
        nonce = nonce or secrets.token_hex(20)
        sig = signature(verb, path, date, self.cid, self.uid, nonce, key or self.key)
        return {
            "Authorization": f'SuTHash signature="{sig}"',
            "Date": date,
            "X-SuT-CID": self.cid,
            "X-SuT-UID": self.uid,
            "X-SuT-Nonce": nonce,
        }

    def call(self, verb: str, resource: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        path = f"/v1/{resource}"
        headers = self.headers(verb, path, **kw)
        if verb in ("GET", "DELETE"):
            return self.client.request(verb, path, params=params or {}, headers=headers)
        return self.client.request(
            verb, path, content=json.dumps(params or {}), headers={**headers, "Content-Type": "application/json"}
        )

    def data(self, verb: str, resource: str, params: dict[str, Any] | None = None) -> Any:
        r = self.call(verb, resource, params)
        assert r.status_code == (202 if verb == "POST" else 200), r.text
        assert r.json()["status"] == "ok"
        return r.json()["response"]["data"]


def _setup(sut: Sut) -> tuple[int, int]:
    lst = sut.data("POST", "list", {"name": "Summer Competition"})
    msg = sut.data(
        "POST",
        "emailMessage",
        {
            "name": "Summer Competition Confirmation",
            "subject": "Confirm your Summer Competition entry",
            "html": '<p>Click <a href="((optin_confirm_url))">here</a></p>',
            "text": "Confirm: ((optin_confirm_url))",
            "customoptin": True,
        },
    )
    assert msg["customoptin"] is True and isinstance(msg["id"], int)
    return lst["id"], msg["id"]


def _err(r: Any, code: int) -> str:
    assert r.status_code == code, r.text
    body = r.json()
    assert body["status"] == "error" and body["response"]["code"] == code and body["response"]["subcode"] is None
    return str(body["response"]["message"])


def test_seed_example_round_trips(client: TestClient, account: dict[str, Any]) -> None:
    sut = Sut(client, account)
    lid, mid = _setup(sut)
    body = {k: SEED[k] for k in ("name", "paused", "summary")} | {"list_id": lid, "message_id": mid}
    r = sut.call("POST", "optinAutomation", body)
    assert r.status_code == 202
    created = r.json()["response"]["data"]
    assert set(created) == set(SEED)
    assert {k: created[k] for k in body} == body
    assert created["user_id"] == account["user_id"] and isinstance(created["id"], int)
    assert isinstance(created["cdate"], int) and isinstance(created["mdate"], int)
    got = sut.call("GET", "optinautomation", {"id": created["id"]}).json()
    assert got == {"status": "ok", "response": {"data": [created], "count": 1, "next": None}}
    # The whole object sent back with PUT changes nothing (list_id unchanged is fine).
    assert sut.data("PUT", "OPTINAUTOMATION", created) | {"mdate": created["mdate"]} == created
    # Summary generated in English when omitted matches the seed's sentence.
    sut.data("DELETE", "optinAutomation", {"id": created["id"]})
    again = sut.data("POST", "optinAutomation", {"list_id": lid, "message_id": mid, "name": "x"})
    assert again["summary"] == SEED["summary"]


def test_suthash_is_checked(client: TestClient, account: dict[str, Any], other_account: dict[str, Any]) -> None:
    sut = Sut(client, account)
    assert sut.call("GET", "list").status_code == 404  # signed fine, nothing there yet
    _err(sut.call("GET", "list", key="0" * 32), 401)
    _err(client.get("/v1/list"), 401)
    nonce = secrets.token_hex(8)
    assert sut.call("GET", "list", nonce=nonce).status_code == 404
    assert "Nonce" in _err(sut.call("GET", "list", nonce=nonce), 401)
    _err(sut.call("GET", "list", date=formatdate(time() - 3600, usegmt=True)), 401)
    _err(sut.call("GET", "list", date="yesterday"), 401)
    # The path is signed exactly as sent: signing another case of it fails, the query string is not signed.
    headers = sut.headers("GET", "/v1/List")
    _err(client.get("/v1/list", headers=headers), 401)
    assert client.get("/v1/List?count=5", headers=sut.headers("GET", "/v1/List")).status_code == 404
    # Another account's cid with this user's key is refused.
    other = Sut(client, other_account)
    other.key = sut.key
    _err(other.call("GET", "list"), 401)


def test_token_auth(client: TestClient, account: dict[str, Any]) -> None:
    sut = Sut(client, account)
    r = sut.call("POST", "token")
    assert r.status_code == 202, r.text
    data = r.json()["response"]["data"]
    assert data["token"] and data["expiry"] > time()
    h = {"Authorization": f"SuTToken {data['token']}"}
    assert client.get("/v1/folder", headers=h).status_code == 404
    assert client.post("/v1/folder", json={"name": "F"}, headers=h).status_code == 202
    _err(client.get("/v1/folder", headers={"Authorization": "SuTToken nope"}), 401)
    r = client.post("/v1/token", data={"username": sut.uid, "password": sut.key})
    assert r.status_code == 202
    _err(client.post("/v1/token", data={"username": sut.uid, "password": "wrong"}), 401)
    _err(client.post("/v1/token", json={}), 401)


def test_every_rule_through_signupto(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    sut = Sut(client, account)
    lid, mid = _setup(sut)
    other_list = sut.data("POST", "list", {"name": "Other"})["id"]
    plain = sut.data("POST", "emailMessage", {"name": "Plain", "subject": "s", "customoptin": False})["id"]
    assert "list_id" in _err(sut.call("POST", "optinAutomation", {"message_id": mid, "name": "x"}), 400)
    assert "message_id" in _err(
        sut.call("POST", "optinAutomation", {"list_id": lid, "message_id": plain, "name": "x"}), 400
    )
    rule = sut.data("POST", "optinAutomation", {"list_id": lid, "message_id": mid, "name": "list rule"})
    _err(sut.call("POST", "optinAutomation", {"list_id": lid, "message_id": mid, "name": "dup"}), 409)
    catch = sut.data("POST", "optinAutomation", {"list_id": None, "message_id": mid, "name": "catch-all"})
    assert catch["list_id"] is None
    _err(sut.call("POST", "optinAutomation", {"list_id": None, "message_id": mid, "name": "2nd"}), 409)
    # The message is now locked.
    assert "opt-in rule" in _err(sut.call("PUT", "emailMessage", {"id": mid, "subject": "changed"}), 409)
    assert sut.data("GET", "emailMessage", {"id": mid})[0]["editable"] is False
    # list_id cannot change.
    _err(sut.call("PUT", "optinAutomation", {"id": rule["id"], "list_id": other_list}), 400)
    # Paused semantics: delete the message, then un-pausing needs a valid message_id.
    sut.data("PUT", "optinAutomation", {"id": rule["id"], "paused": True})
    sut.data("DELETE", "emailMessage", {"id": mid})
    assert sut.data("GET", "optinAutomation", {"id": catch["id"]})[0]["paused"] is False
    _err(sut.call("PUT", "optinAutomation", {"id": rule["id"], "paused": False}), 400)
    new_mid = sut.data("POST", "emailMessage", {"name": "New", "subject": "New", "customoptin": True})["id"]
    done = sut.data("PUT", "optinAutomation", {"id": rule["id"], "paused": "false", "message_id": new_mid})
    assert done["paused"] is False and done["message_id"] == new_mid
    # Filters, sort, count, start, reverse.
    names = [r["name"] for r in sut.data("GET", "optinAutomation", {"sort": "name"})]
    assert names == ["catch-all", "list rule"]
    r = sut.call("GET", "optinAutomation", {"sort": "name", "reverse": 1, "count": 1}).json()["response"]
    assert [d["name"] for d in r["data"]] == ["list rule"] and r["count"] == 1 and r["next"] == 1
    r = sut.call("GET", "optinAutomation", {"sort": "name", "reverse": 1, "count": 1, "start": 1}).json()["response"]
    assert [d["name"] for d in r["data"]] == ["catch-all"] and r["next"] is None
    assert [d["id"] for d in sut.data("GET", "optinAutomation", {"list_id": lid})] == [rule["id"]]
    assert [d["id"] for d in sut.data("GET", "optinAutomation", {"list_id": "null"})] == [catch["id"]]
    assert len(sut.data("GET", "optinAutomation", {"user_id": account["user_id"], "paused": "false"})) == 2
    _err(sut.call("GET", "optinAutomation", {"paused": "true"}), 404)
    _err(sut.call("GET", "optinAutomation", {"count": 201}), 400)
    _err(sut.call("GET", "optinAutomation", {"sort": "summary"}), 400)
    # Delete.
    sut.data("DELETE", "optinAutomation", {"id": catch["id"]})
    _err(sut.call("GET", "optinAutomation", {"id": catch["id"]}), 404)
    _err(sut.call("DELETE", "optinAutomation", {"id": catch["id"]}), 404)


def test_permissions_across_users_and_accounts(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    admin = Sut(client, account)
    lid, mid = _setup(admin)
    alice = Sut(client, make_user(container, account["account_id"], "alice"))
    bob = Sut(client, make_user(container, account["account_id"], "bob"))
    rule = alice.data("POST", "optinAutomation", {"list_id": lid, "message_id": mid, "name": "alice's"})
    _err(bob.call("PUT", "optinAutomation", {"id": rule["id"], "name": "bob's"}), 403)
    _err(bob.call("DELETE", "optinAutomation", {"id": rule["id"]}), 403)
    assert admin.data("PUT", "optinAutomation", {"id": rule["id"], "name": "admin's"})["name"] == "admin's"
    stranger = Sut(client, other_account)
    _err(stranger.call("GET", "optinAutomation", {"id": rule["id"]}), 404)
    _err(stranger.call("PUT", "optinAutomation", {"id": rule["id"], "name": "x"}), 404)
    _err(stranger.call("POST", "optinAutomation", {"list_id": lid, "message_id": mid, "name": "x"}), 400)
    assert alice.data("GET", "optinAutomation", {"id": rule["id"]})[0]["name"] == "admin's"


def test_folder_restrictions(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    admin = Sut(client, account)
    aid = account["account_id"]
    mine, theirs = make_category(container, aid, "Mine"), make_category(container, aid, "Theirs")
    l_mine = admin.data("POST", "list", {"name": "A", "folder_id": mine})["id"]
    l_theirs = admin.data("POST", "list", {"name": "B", "folder_id": theirs})["id"]
    mid = admin.data("POST", "emailMessage", {"name": "M", "subject": "S", "customoptin": True})["id"]
    creds = make_user(container, aid, "restricted")
    grant(container, creds["user_id"], mine)
    user = Sut(client, creds)
    restrict_folders(container, aid)
    _err(user.call("POST", "optinAutomation", {"list_id": l_theirs, "message_id": mid, "name": "x"}), 403)
    assert (
        user.data("POST", "optinAutomation", {"list_id": l_mine, "message_id": mid, "name": "ok"})["list_id"] == l_mine
    )


def test_signup_to_confirmation(
    client: TestClient, container: Container, account: dict[str, Any], smtp_settings: Settings, smtp_sink: SmtpSink
) -> None:
    container.settings = smtp_settings
    sut = Sut(client, account)
    lid, mid = _setup(sut)
    sut.data("POST", "optinAutomation", {"list_id": lid, "message_id": mid, "name": "Summer Competition Optin"})
    person = sut.data("POST", "subscriber", {"email": " Ann@Example.COM ", "first_name": "Ann"})
    assert person["email"] == "ann@example.com" and person["first_name"] == "Ann"
    assert sut.data("POST", "subscriber", {"email": "ann@example.com"})["id"] == person["id"]  # found, not duplicated
    rec = sut.data("POST", "emailOptIn", {"subscriber_id": person["id"], "list_id": lid})
    assert {k: rec[k] for k in ("completed", "confirmed", "error", "errortype")} == {
        "completed": False,
        "confirmed": False,
        "error": False,
        "errortype": None,
    }
    assert rec["message_id"] == mid and isinstance(rec["id"], int)
    run_optin_jobs(container)
    [got] = smtp_sink.to("ann@example.com")
    assert got.message["Subject"] == "Confirm your Summer Competition entry"
    link = re.search(r"http://herald\.test(/c/[^\s\"<]+)", got.data.decode()).group(1)  # type: ignore[union-attr]
    assert sut.data("GET", "emailOptIn", {"id": rec["id"]})[0]["completed"] is True
    assert client.get(link).status_code == 200
    sub = sut.data("GET", "subscription", {"subscriber_id": person["id"], "list_id": lid})[0]
    assert sub["confirmed"] is True and sub["id"] == rec["subscription_id"]
    assert sut.data("GET", "emailOptIn", {"id": rec["id"]})[0]["confirmed"] is True
    assert client.get("/api/v1/addresses/ann@example.com", headers=auth(account)).json()["status"] == "opted_in"
    _err(sut.call("POST", "emailOptIn", {"subscription_id": sub["id"]}), 409)


def test_emailoptin_rate_limit_and_blacklist(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    sut = Sut(client, account)
    lid, _ = _setup(sut)
    person = sut.data("POST", "subscriber", {"email": "rate@example.com"})
    sub = sut.data("POST", "subscription", {"subscriber_id": person["id"], "list_id": lid, "confirmed": False})
    assert sub["confirmed"] is False
    # Creating the subscription sends nothing: only emailOptIn triggers the opt-in email (seed 004).
    assert sut.call("GET", "emailOptIn", {"subscription_id": sub["id"]}).status_code == 404
    for _ in range(10):
        sut.data("POST", "emailOptIn", {"subscription_id": sub["id"]})
    assert len(sut.data("GET", "emailOptIn", {"subscription_id": sub["id"]})) == 10
    _err(sut.call("POST", "emailOptIn", {"subscription_id": sub["id"]}), 429)
    assert len(sut.data("GET", "emailOptIn", {"subscription_id": sub["id"]})) == 10

    spam = sut.data("POST", "subscriber", {"email": "spam@example.com"})
    spam_sub = sut.data("POST", "subscription", {"subscriber_id": spam["id"], "list_id": lid, "confirmed": "false"})
    with container.transaction() as s:
        ConsentService(s, Actor(account_id=account["account_id"], source="test")).set_status(
            "spam@example.com", "spam_reported"
        )
    rec = sut.data("POST", "emailOptIn", {"subscription_id": spam_sub["id"]})
    assert (rec["completed"], rec["error"], rec["errortype"]) == (True, True, "Blacklisted")
    # A new subscription for a spam-reported address is refused and nothing is created.
    _err(
        sut.call(
            "POST",
            "emailOptIn",
            {"subscriber_id": spam["id"], "list_id": sut.data("POST", "list", {"name": "N"})["id"]},
        ),
        409,
    )


def test_bad_requests(client: TestClient, account: dict[str, Any], other_account: dict[str, Any]) -> None:
    sut = Sut(client, account)
    _err(sut.call("GET", "nosuchthing"), 404)
    path = "/v1/optinAutomation"
    r = client.post(
        path, content=b"{not json", headers={**sut.headers("POST", path), "Content-Type": "application/json"}
    )
    _err(r, 400)
    _err(sut.call("POST", "optinAutomation", {"list_id": "abc", "message_id": 1, "name": "x"}), 400)
    _err(sut.call("PUT", "optinAutomation", {"name": "no id"}), 400)
    _err(sut.call("POST", "emailOptIn", {"subscriber_id": 424242, "list_id": 1}), 400)
    other_person = Sut(client, other_account).data("POST", "subscriber", {"email": "x@example.com"})
    lid, _ = _setup(sut)
    _err(sut.call("POST", "emailOptIn", {"subscriber_id": other_person["id"], "list_id": lid}), 400)
    _err(sut.call("GET", "subscription"), 404)
    # Form-encoded bodies are accepted too.
    form = client.post(
        path.replace("optinAutomation", "folder"),
        data={"name": "Form folder"},
        headers=sut.headers("POST", "/v1/folder"),
    )
    assert form.status_code == 202 and form.json()["response"]["data"]["name"] == "Form folder"


@pytest.mark.parametrize("resource", ["optinautomation", "OptInAutomation", "optinAutomation"])
def test_resource_names_are_case_insensitive(client: TestClient, account: dict[str, Any], resource: str) -> None:
    r = Sut(client, account).call("GET", resource)
    _err(r, 404)
    assert "No matching" in r.json()["response"]["message"]
