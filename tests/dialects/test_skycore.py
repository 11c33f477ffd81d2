"""Skycore wxml 1.3 through the real app: XML in a form field, raw XML, GET keys; every code; postbacks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from herald.actor import Actor
from herald.consent.models import ConsentEvent
from herald.consent.service import ConsentService
from herald.container import Container
from herald.lists.models import Subscription
from herald.lists.service import ListService
from herald.webhooks.models import Webhook
from tests.conftest import auth
from tests.webhooks.test_delivery import Receiver, _run_due

URL = "/API/wxml/1.3/index.php"


def _actor(account: dict[str, Any]) -> Actor:
    return Actor(account_id=account["account_id"], source="test")


def _list(container: Container, account: dict[str, Any], *, double_opt_in: bool = False) -> int:
    with container.transaction() as s:
        return ListService(s, _actor(account)).create_list("Campaign", double_opt_in=double_opt_in).id


def _subscribe(container: Container, account: dict[str, Any], list_id: int, *emails: str) -> None:
    with container.transaction() as s:
        lists = ListService(s, _actor(account))
        for email in emails:
            lists.subscribe(list_id, email)


def _sub_status(container: Container, account: dict[str, Any], list_id: int, email: str) -> str | None:
    with container.transaction() as s:
        sub = ListService(s, _actor(account)).find_subscription(list_id, email)
        return sub.status if sub else None


def _xml(action: str, key: str, campaign: object, email: str) -> str:
    return (
        f"<REQUEST>\n    <ACTION>{action}</ACTION>\n    <API_KEY>{key}</API_KEY>\n"
        f"    <CAMPAIGNID>{campaign}</CAMPAIGNID>\n    <EMAIL>{email}</EMAIL>\n</REQUEST>"
    )


def _success(campaign: object, email: str) -> str:
    return (
        f"<RESPONSE>\n    <STATUS>Success</STATUS>\n    <CAMPAIGNID>{campaign}</CAMPAIGNID>\n"
        f"    <EMAIL>{email}</EMAIL>\n</RESPONSE>\n"
    )


def _failure(code: str, info: str) -> str:
    return (
        f"<RESPONSE>\n    <STATUS>Failure</STATUS>\n    <ERRORCODE>{code}</ERRORCODE>\n"
        f"    <ERRORINFO>{info}</ERRORINFO>\n</RESPONSE>\n"
    )


def _events(container: Container) -> int:
    with container.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(ConsentEvent)) or 0)


@pytest.fixture
def key(account: dict[str, Any]) -> str:
    return str(account["skycore"]["api_key"])


def test_seed_xml_request_in_form_field(
    client: TestClient, container: Container, account: dict[str, Any], key: str
) -> None:
    list_id = _list(container, account)
    _subscribe(container, account, list_id, "john@email.com")
    r = client.post(URL, data={"xml": _xml("unsubscribeEmail", key, list_id, "john@email.com")})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    assert r.text == _success(list_id, "john@email.com")
    assert _sub_status(container, account, list_id, "john@email.com") == "unsubscribed"
    events = client.get("/api/v1/addresses/john@email.com/events", headers=auth(account)).json()["items"]
    assert (events[-1]["source"], events[-1]["list_id"], events[-1]["to_status"]) == (
        "skycore",
        list_id,
        "unsubscribed",
    )
    assert events[-1]["credential"] is not None


def test_seed_get_request_and_raw_xml_body(
    client: TestClient, container: Container, account: dict[str, Any], key: str
) -> None:
    list_id = _list(container, account)
    _subscribe(container, account, list_id, "john@email.com", "jane@email.com")
    r = client.get(
        URL, params={"action": "unsubscribeemail", "api_key": key, "campaignid": list_id, "email": "John@Email.com"}
    )
    assert r.text == _success(list_id, "john@email.com")
    raw = _xml("UNSUBSCRIBEEMAIL", key, list_id, "jane@email.com").encode()
    r = client.post(URL, content=raw, headers={"content-type": "text/xml"})
    assert r.text == _success(list_id, "jane@email.com")
    assert _sub_status(container, account, list_id, "jane@email.com") == "unsubscribed"
    # already unsubscribed: done, and no new ledger entry
    before = _events(container)
    assert client.post(URL, content=raw).text == _success(list_id, "jane@email.com")
    assert _events(container) == before


def test_seed_failure_invalid_campaign(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any], key: str
) -> None:
    theirs = _list(container, other_account)
    _subscribe(container, other_account, theirs, "john@email.com")
    for campaign in (1116, theirs, "abc", "", -1, 10**12):
        r = client.post(URL, data={"xml": _xml("unsubscribeEmail", key, campaign, "john@email.com")})
        assert r.text == _failure("E912", "Invalid CAMPAIGNID"), campaign
    assert _sub_status(container, other_account, theirs, "john@email.com") == "active"


def test_email_all_unsubscribes_every_subscriber(
    client: TestClient, container: Container, account: dict[str, Any], key: str
) -> None:
    list_id = _list(container, account)
    other_list = _list(container, account)
    _subscribe(container, account, list_id, "a@example.com", "b@example.com")
    _subscribe(container, account, other_list, "a@example.com")
    r = client.get(URL, params={"action": "unsubscribeEmail", "api_key": key, "campaignid": list_id, "email": "all"})
    assert r.text == _success(list_id, "ALL")
    assert _sub_status(container, account, list_id, "a@example.com") == "unsubscribed"
    assert _sub_status(container, account, list_id, "b@example.com") == "unsubscribed"
    assert _sub_status(container, account, other_list, "a@example.com") == "active"


def test_subscribe_active_at_once_or_unconfirmed_with_double_opt_in(
    client: TestClient, container: Container, account: dict[str, Any], key: str
) -> None:
    plain = _list(container, account)
    doi = _list(container, account, double_opt_in=True)
    r = client.post(URL, data={"xml": _xml("subscribeEmail", key, plain, " New@Example.com ")})
    assert r.text == _success(plain, "new@example.com")
    assert _sub_status(container, account, plain, "new@example.com") == "active"
    native = client.get("/api/v1/addresses/new@example.com", headers=auth(account)).json()
    assert native["status"] == "unknown" and native["lists"] == [{"id": plain, "name": "Campaign", "status": "active"}]
    r = client.get(
        URL, params={"action": "subscribeemail", "api_key": key, "campaignid": doi, "email": "d@example.com"}
    )
    assert r.text == _success(doi, "d@example.com")
    assert _sub_status(container, account, doi, "d@example.com") == "unconfirmed"


@pytest.mark.parametrize(
    ("status", "until", "code", "info"),
    [
        ("opted_out", None, "E915", "This 'email' has opted out."),
        ("bounced", None, "E916", "This 'email' has bounced."),
        ("spam_reported", None, "E917", "This 'email' has filed a spam complaint."),
        ("opted_out", "2099-01-31", "E918", "This 'email' has opted out until 2099-01-31."),
    ],
)
def test_subscribe_refuses_suppressed_addresses_and_changes_nothing(
    client: TestClient,
    container: Container,
    account: dict[str, Any],
    key: str,
    status: str,
    until: str | None,
    code: str,
    info: str,
) -> None:
    list_id = _list(container, account)
    h = auth(account)
    body: dict[str, Any] = {"status": status, **({"until": until} if until else {})}
    assert client.put("/api/v1/addresses/s@example.com/status", json=body, headers=h).status_code == 200
    before = _events(container)
    r = client.post(URL, data={"xml": _xml("subscribeEmail", key, list_id, "s@example.com")})
    assert r.text == _failure(code, info)
    assert _sub_status(container, account, list_id, "s@example.com") is None
    assert _events(container) == before


def test_general_error_codes(client: TestClient, container: Container, account: dict[str, Any], key: str) -> None:
    list_id = _list(container, account)
    _subscribe(container, account, list_id, "a@example.com")
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"api_key": key, "campaignid": list_id, "email": "a@example.com"}, ("E101", "'action' required")),
        (
            {"action": "unsubscribeEmail", "api_key": "nope", "campaignid": list_id, "email": "a@example.com"},
            ("E104", "User Authentication Failed."),
        ),
        (
            {"action": "unsubscribeEmail", "campaignid": list_id, "email": "a@example.com"},
            ("E104", "User Authentication Failed."),
        ),
        (
            {"action": "sendSMS", "api_key": key, "campaignid": list_id, "email": "a@example.com"},
            ("E100", "Invalid request. Make a valid request via GET/POST/XML with all the required variables."),
        ),
        ({"action": "unsubscribeEmail", "api_key": key, "campaignid": list_id}, ("E911", "The 'email' is required.")),
        (
            {"action": "unsubscribeEmail", "api_key": key, "campaignid": list_id, "email": "nobody@example.com"},
            ("E914", "Could not unsubscribe this 'email'."),
        ),
        (
            {"action": "unsubscribeEmail", "api_key": key, "campaignid": list_id, "email": "not an email"},
            ("E914", "Could not unsubscribe this 'email'."),
        ),
        (
            {"action": "subscribeEmail", "api_key": key, "campaignid": list_id, "email": "not an email"},
            ("E913", "Could not subscribe this 'email'."),
        ),
        (
            {"action": "subscribeEmail", "api_key": key, "campaignid": list_id, "email": "ALL"},
            ("E913", "Could not subscribe this 'email'."),
        ),
        ({}, ("E100", "Invalid request. Make a valid request via GET/POST/XML with all the required variables.")),
    ]
    for params, (code, info) in cases:
        assert client.get(URL, params=params).text == _failure(code, info), params
    assert _sub_status(container, account, list_id, "a@example.com") == "active"


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<REQUEST><ACTION>unsubscribeEmail</ACTION><API_KEY>&lol2;</API_KEY></REQUEST>"""


@pytest.mark.parametrize(
    ("raw", "info"),
    [
        ("<REQUEST><ACTION>unsubscribeEmail</ACTION>", "XML Parse error: no element found: line 1, column 42"),
        ("<REQUEST><A>1</B></REQUEST>", "XML Parse error: mismatched tag: line 1, column 15"),
        (BOMB, "XML Parse error: forbidden XML construct (DTDForbidden)"),
    ],
)
def test_xml_parse_errors(client: TestClient, container: Container, raw: str, info: str) -> None:
    assert client.post(URL, data={"xml": raw}).text == _failure("E108", info)
    assert client.post(URL, content=raw.encode()).text == _failure("E108", info)


def test_oversized_body_and_ledger_untouched(
    client: TestClient, container: Container, account: dict[str, Any], key: str
) -> None:
    list_id = _list(container, account)
    _subscribe(container, account, list_id, "a@example.com")
    container.settings.max_body_bytes = 200
    raw = _xml("unsubscribeEmail", key, list_id, "a@example.com") + " " * 300
    r = client.post(URL, content=raw.encode())
    assert r.status_code == 200 and "<ERRORCODE>E100</ERRORCODE>" in r.text
    assert _sub_status(container, account, list_id, "a@example.com") == "active"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_unsubscribe_and_subscribe_send_postbacks(
    client: TestClient, container: Container, account: dict[str, Any], key: str, receiver: Receiver
) -> None:
    list_id = _list(container, account)
    with container.transaction() as s:
        s.add(
            Webhook(
                account_id=account["account_id"],
                url=receiver.url,
                events=["list.subscribed", "list.unsubscribed"],
                format="skycore",
            )
        )
    client.post(URL, data={"xml": _xml("subscribeEmail", key, list_id, "john@email.com")})
    client.post(URL, data={"xml": _xml("unsubscribeEmail", key, list_id, "john@email.com")})
    _run_due(container)
    _run_due(container)
    codes = [body.decode().split("<CODE>")[1][:4] for _, _, body in receiver.requests]
    assert codes == ["N303", "N304"]
    assert f"<CAMPAIGNID>{list_id}</CAMPAIGNID>" in receiver.requests[1][2].decode()


def test_mailkit_optout_refused_by_skycore_and_visible_everywhere(
    client: TestClient, container: Container, account: dict[str, Any], key: str
) -> None:
    list_id = _list(container, account)
    _subscribe(container, account, list_id, "x@example.com")
    mk = account["mailkit"]
    body = {
        "function": "mailkit.email.unsubscribe",
        "id": mk["client_id"],
        "md5": mk["client_md5"],
        "parameters": {"email": "x@example.com"},
    }
    assert client.post("/json.fcgi", json=body).json()["status"] == "1"
    r = client.post(URL, data={"xml": _xml("subscribeEmail", key, list_id, "x@example.com")})
    assert "<ERRORCODE>E915</ERRORCODE>" in r.text
    with container.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Subscription)) == 1
        addr = ConsentService(s, _actor(account)).get("x@example.com")
        assert addr.status == "opted_out"
