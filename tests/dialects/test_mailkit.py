"""Mailkit JSON and XML-RPC through the real app (XML-RPC through xmlrpc.client against a live server)."""

from __future__ import annotations

import xmlrpc.client
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from herald.actor import Actor
from herald.consent.models import Address, ConsentEvent
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from tests.conftest import LiveServer, auth

JSON = "/json.fcgi"
GETSTATUS = "mailkit.email.unsubscribe.getstatus"
UNSUBSCRIBE = "mailkit.email.unsubscribe"


def _call(account: dict[str, Any], function: str, **parameters: Any) -> dict[str, Any]:
    creds = account["mailkit"]
    return {"function": function, "id": creds["client_id"], "md5": creds["client_md5"], "parameters": parameters}


def _known(container: Container, account: dict[str, Any], email: str, status: str | None = None) -> int:
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id=account["account_id"], source="test"))
        addr = svc.ensure(email)
        if status:
            svc.set_status(email, status)
        return addr.id


def _status(container: Container, account: dict[str, Any], email: str) -> tuple[str, Any] | None:
    with container.transaction() as s:
        addr = ConsentService(s, Actor(account_id=account["account_id"], source="test")).find(email)
        return (addr.status, addr.opted_out_until) if addr else None


def _topics(container: Container, account: dict[str, Any]) -> tuple[int, int, int]:
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id=account["account_id"], source="test"))
        news = svc.create_topic("Newsletters", description="News in the assortment, special offers.")
        blog = svc.create_topic("Blog", description="Tips, tricks, tutorials..")
        hidden = svc.create_topic("Hidden", enabled=False)
        return news.id, blog.id, hidden.id


def _unsubscribe_topic(container: Container, account: dict[str, Any], email: str, topic_id: int) -> None:
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id=account["account_id"], source="test"))
        svc.unsubscribe_topic(svc.get(email), topic_id)


# -- JSON getstatus -----------------------------------------------------------------------------
def test_getstatus_example_1_not_unsubscribed(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    aid = _known(container, account, "example@example.eu")
    r = client.post(JSON, json=_call(account, GETSTATUS, email="Example@Example.eu", ID_email=None))
    assert r.status_code == 200
    assert r.json() == {
        "email": "example@example.eu",
        "error_status": "0",
        "topics": None,
        "ID_email": str(aid),
        "unsubscribe": "FALSE",
        "timeout": {"date": "0000-00-00"},
    }
    assert list(r.json()) == ["email", "error_status", "topics", "ID_email", "unsubscribe", "timeout"]
    # by ID_email alone, as an int or a numeric string; an empty email counts as absent
    for ident in (aid, str(aid)):
        r = client.post(JSON, json=_call(account, GETSTATUS, ID_email=ident, email=""))
        assert r.json()["email"] == "example@example.eu"
    r = client.post(JSON, json={**_call(account, GETSTATUS, ID_email=aid), "id": str(account["mailkit"]["client_id"])})
    assert r.json()["unsubscribe"] == "FALSE"


def test_getstatus_example_2_unsubscribed_permanently_and_temporarily(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    _known(container, account, "perm@example.cz", "opted_out")
    r = client.post(JSON, json=_call(account, GETSTATUS, email="perm@example.cz"))
    assert r.json()["unsubscribe"] == "TRUE" and r.json()["timeout"] == {"date": "0000-00-00"}
    aid = _known(container, account, "temp@example.cz")
    r = client.post(JSON, json=_call(account, UNSUBSCRIBE, ID_email=aid, timeout="TRUE", timeout_days=30))
    assert r.json() == {"error_status": "0", "ID_email": str(aid), "status": "1"}
    r = client.post(JSON, json=_call(account, GETSTATUS, email="temp@example.cz"))
    expected = (utcnow() + timedelta(days=30)).date().isoformat()
    assert r.json() == {
        "email": "temp@example.cz",
        "error_status": "0",
        "topics": None,
        "ID_email": str(aid),
        "unsubscribe": "TRUE",
        "timeout": {"date": expected},
    }


def test_getstatus_example_3_partially_unsubscribed(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    news, blog, hidden = _topics(container, account)
    aid = _known(container, account, "example@example.com")
    _unsubscribe_topic(container, account, "example@example.com", hidden)
    # an unsubscribe from a disabled topic alone is not shown
    assert client.post(JSON, json=_call(account, GETSTATUS, ID_email=aid)).json()["topics"] is None
    _unsubscribe_topic(container, account, "example@example.com", blog)
    r = client.post(JSON, json=_call(account, GETSTATUS, email="example@example.com"))
    assert r.json() == {
        "error_status": "0",
        "timeout": {"date": "0000-00-00"},
        "email": "example@example.com",
        "topics": [
            {
                "ID_TOPIC": news,
                "UNSUBSCRIBE": "FALSE",
                "ID_UNSUBSCRIBE_GROUP": news,
                "NAME": "Newsletters",
                "STATUS": "enabled",
                "DESCRIPTION": "News in the assortment, special offers.",
            },
            {
                "ID_TOPIC": blog,
                "UNSUBSCRIBE": "TRUE",
                "ID_UNSUBSCRIBE_GROUP": blog,
                "NAME": "Blog",
                "STATUS": "enabled",
                "DESCRIPTION": "Tips, tricks, tutorials..",
            },
        ],
        "unsubscribe": "FALSE",
        "ID_email": aid,
    }


def test_getstatus_errors(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    aid = _known(container, account, "a@example.com")
    theirs = _known(container, other_account, "t@example.com")
    cases = [
        (_call(account, GETSTATUS), "Missing ID email"),
        (_call(account, GETSTATUS, email=None, ID_email=""), "Missing ID email"),
        (_call(account, GETSTATUS, ID_email="abc"), "Invalid ID_email"),
        (_call(account, GETSTATUS, ID_email=theirs), "Invalid ID_email or email"),
        (_call(account, GETSTATUS, ID_email=99999999999), "Invalid ID_email or email"),
        (_call(account, GETSTATUS, email="t@example.com"), "Invalid ID_email or email"),
        (_call(account, GETSTATUS, email="not-an-email"), "Invalid ID_email or email"),
        (_call(account, GETSTATUS, email="a@example.com", ID_email=aid + 1), "Invalid ID_email or email"),
        ({**_call(account, GETSTATUS, ID_email=aid), "md5": "0" * 32}, "Unauthorized"),
        ({**_call(account, GETSTATUS, ID_email=aid), "id": other_account["mailkit"]["client_id"]}, "Unauthorized"),
        ({**_call(account, GETSTATUS, ID_email=aid), "id": "abc"}, "Unauthorized"),
        ({**_call(account, GETSTATUS, ID_email=aid), "id": None}, "Unauthorized"),
        ({**_call(account, GETSTATUS, ID_email=aid), "md5": 5}, "Unauthorized"),
        (_call(account, "mailkit.nothing.here", ID_email=aid), "Unknown function"),
    ]
    for body, error in cases:
        r = client.post(JSON, json=body)
        assert r.status_code == 200
        assert r.json() == {"error_status": 1, "error": error}, body


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1,2]", b'{"id":1}', b'{"function":"x","parameters":[1]}', b"\xff\xfe", b""],
)
def test_malformed_json_is_a_mailkit_error(client: TestClient, raw: bytes) -> None:
    r = client.post(JSON, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {"error_status": 1, "error": "Invalid request"}


def test_oversized_body_is_a_mailkit_error(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    _known(container, account, "big@example.com")
    container.settings.max_body_bytes = 300
    body = _call(account, UNSUBSCRIBE, email="big@example.com", pad="x" * 400)
    assert client.post(JSON, json=body).json() == {"error_status": 1, "error": "Request too large"}
    assert _status(container, account, "big@example.com") == ("unknown", None)


# -- JSON unsubscribe ---------------------------------------------------------------------------
def test_unsubscribe_permanent_writes_ledger(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    aid = _known(container, account, "u@example.com", "opted_in")
    body = _call(account, UNSUBSCRIBE, email="U@example.com", ID_send_message="77", send_optout="FALSE", timeout=None)
    r = client.post(JSON, json=body)
    assert r.json() == {"error_status": "0", "ID_email": str(aid), "status": "1"}
    assert _status(container, account, "u@example.com") == ("opted_out", None)
    events = client.get("/api/v1/addresses/u@example.com/events", headers=auth(account)).json()["items"]
    assert (events[-1]["source"], events[-1]["to_status"]) == ("mailkit", "opted_out")
    assert "77" in events[-1]["reason"] and events[-1]["credential"] is not None
    # again: already unsubscribed, answered as done, nothing new in the ledger
    assert client.post(JSON, json=body).json()["status"] == "1"
    assert len(client.get("/api/v1/addresses/u@example.com/events", headers=auth(account)).json()["items"]) == len(
        events
    )


@pytest.mark.parametrize("days", [13, 91, "x", None, ""])
def test_unsubscribe_timeout_days_out_of_range(
    client: TestClient, container: Container, account: dict[str, Any], days: Any
) -> None:
    _known(container, account, "d@example.com")
    r = client.post(JSON, json=_call(account, UNSUBSCRIBE, email="d@example.com", timeout=True, timeout_days=days))
    assert r.json() == {"error_status": 1, "error": "Invalid timeout_days"}
    assert _status(container, account, "d@example.com") == ("unknown", None)


@pytest.mark.parametrize("days", [14, 90, "45"])
def test_unsubscribe_temporary_bounds(
    client: TestClient, container: Container, account: dict[str, Any], days: Any
) -> None:
    _known(container, account, "d@example.com")
    r = client.post(JSON, json=_call(account, UNSUBSCRIBE, email="d@example.com", timeout="TRUE", timeout_days=days))
    assert r.json()["status"] == "1"
    status, until = _status(container, account, "d@example.com")  # type: ignore[misc]
    assert status == "opted_out" and until.date() == (utcnow() + timedelta(days=int(days))).date()


def test_unsubscribe_unknown_or_foreign_address_creates_nothing(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    theirs = _known(container, other_account, "t@example.com")
    for params in ({"email": "new@example.com"}, {"ID_email": theirs}, {"email": "t@example.com"}):
        r = client.post(JSON, json=_call(account, UNSUBSCRIBE, **params))
        assert r.json() == {"error_status": 1, "error": "Invalid ID_email or email"}
    assert client.post(JSON, json=_call(account, UNSUBSCRIBE)).json()["error"] == "Missing ID email"
    with container.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Address).where(Address.account_id == 1)) == 0
    assert _status(container, other_account, "t@example.com") == ("unknown", None)


def test_unsubscribe_refused_for_bounced_and_temporary_to_permanent(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    _known(container, account, "b@example.com", "bounced")
    r = client.post(JSON, json=_call(account, UNSUBSCRIBE, email="b@example.com"))
    assert r.json() == {"error_status": 1, "error": "Not allowed for current status bounced"}
    assert _status(container, account, "b@example.com") == ("bounced", None)
    _known(container, account, "t@example.com")
    client.post(JSON, json=_call(account, UNSUBSCRIBE, email="t@example.com", timeout="TRUE", timeout_days=20))
    r = client.post(JSON, json=_call(account, UNSUBSCRIBE, email="t@example.com"))
    assert r.json()["error_status"] == 1


def test_mailkit_change_visible_through_allclients_and_native(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    _known(container, account, "x@example.com")
    client.post(JSON, json=_call(account, UNSUBSCRIBE, email="x@example.com"))
    creds = account["allclients"]
    r = client.post(
        "/api/2/GetOptInStatus.aspx",
        data={**creds, "email": "x@example.com", "response_type": "json"},
    )
    assert r.json()["details"]["optinstatus"] == "Opt Out"
    assert client.get("/api/v1/addresses/x@example.com", headers=auth(account)).json()["status"] == "opted_out"


# -- XML-RPC ------------------------------------------------------------------------------------
def _proxy(server: LiveServer) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(server.url + "/rpc.fcgi")


def test_xmlrpc_getstatus_all_three_examples(
    live_server: LiveServer, container: Container, account: dict[str, Any]
) -> None:
    cid, md5 = account["mailkit"]["client_id"], account["mailkit"]["client_md5"]
    news, blog, _hidden = _topics(container, account)
    aid = _known(container, account, "x@example.com")
    with _proxy(live_server) as proxy:
        assert proxy.mailkit.email.unsubscribe.getstatus(cid, md5, aid) == "FALSE"
        assert proxy.mailkit.email.unsubscribe.getstatus(cid, md5, "X@example.com") == "FALSE"
        _unsubscribe_topic(container, account, "x@example.com", news)
        topics = proxy.mailkit.email.unsubscribe.getstatus(str(cid), md5, str(aid))
        assert [(t["ID_TOPIC"], t["ID_UNSUBSCRIBE_GROUP"], t["UNSUBSCRIBE"], t["NAME"]) for t in topics] == [
            (news, news, "TRUE", "Newsletters"),
            (blog, blog, "FALSE", "Blog"),
        ]
        assert topics[0]["STATUS"] == "enabled" and topics[1]["DESCRIPTION"] == "Tips, tricks, tutorials.."
        assert proxy.mailkit.email.unsubscribe(cid, md5, aid) == aid
        assert proxy.mailkit.email.unsubscribe.getstatus(cid, md5, aid) == "TRUE"


def test_xmlrpc_unsubscribe_temporary_returns_bare_int(
    live_server: LiveServer, container: Container, account: dict[str, Any]
) -> None:
    cid, md5 = account["mailkit"]["client_id"], account["mailkit"]["client_md5"]
    aid = _known(container, account, "y@example.com")
    with _proxy(live_server) as proxy:
        result = proxy.mailkit.email.unsubscribe(
            cid, md5, "y@example.com", 5, "FALSE", {"timeout": "TRUE", "timeout_days": 20}
        )
        assert result == aid and isinstance(result, int)
    status, until = _status(container, account, "y@example.com")  # type: ignore[misc]
    assert status == "opted_out" and until.date() == (utcnow() + timedelta(days=20)).date()


def test_xmlrpc_errors_are_plain_strings(
    live_server: LiveServer, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    cid, md5 = account["mailkit"]["client_id"], account["mailkit"]["client_md5"]
    theirs = _known(container, other_account, "t@example.com")
    with _proxy(live_server) as proxy:
        assert proxy.mailkit.email.unsubscribe.getstatus(cid, "wrong", 1) == "Unauthorized"
        assert (
            proxy.mailkit.email.unsubscribe.getstatus(other_account["mailkit"]["client_id"], md5, 1) == "Unauthorized"
        )
        assert proxy.mailkit.email.unsubscribe.getstatus(cid, md5, theirs) == "Invalid ID_email or email"
        assert proxy.mailkit.email.unsubscribe(cid, md5, "nobody@example.com") == "Invalid ID_email or email"
        assert proxy.mailkit.email.unsubscribe.getstatus(cid, md5) == "Missing ID email"
        assert proxy.mailkit.email.unsubscribe.getstatus(cid, md5, "") == "Missing ID email"
        assert proxy.mailkit.nope(cid, md5, 1) == "Unknown function"
        assert proxy.mailkit.email.unsubscribe(cid, md5, theirs, 1, "TRUE", {"timeout": True, "timeout_days": 5}) == (
            "Invalid ID_email or email"
        )
    assert _status(container, other_account, "t@example.com") == ("unknown", None)


def test_xmlrpc_wire_format_uses_i4(live_server: LiveServer, container: Container, account: dict[str, Any]) -> None:
    cid, md5 = account["mailkit"]["client_id"], account["mailkit"]["client_md5"]
    aid = _known(container, account, "w@example.com")
    request = xmlrpc.client.dumps((cid, md5, aid), "mailkit.email.unsubscribe")
    r = httpx.post(live_server.url + "/rpc.fcgi", content=request, headers={"content-type": "text/xml"})
    assert r.status_code == 200
    assert r.text == (
        '<?xml version="1.0" encoding="utf-8"?>\n<methodResponse>\n<params>\n<param>\n'
        f"<value><i4>{aid}</i4></value>\n</param>\n</params>\n</methodResponse>\n"
    )


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<methodCall><methodName>mailkit.email.unsubscribe</methodName><params>
<param><value><int>1</int></value></param><param><value><string>&lol2;</string></value></param>
</params></methodCall>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>mailkit.email.unsubscribe.getstatus</methodName><params>
<param><value><string>&ext;</string></value></param></params></methodCall>"""


@pytest.mark.parametrize(
    "raw",
    [BOMB, EXTERNAL, b"<methodCall><methodName>x", b"not xml", b"", b"<methodResponse><params/></methodResponse>"],
)
def test_xmlrpc_malformed_or_hostile_body(client: TestClient, container: Container, raw: bytes) -> None:
    r = client.post("/rpc.fcgi", content=raw, headers={"content-type": "text/xml"})
    assert r.status_code == 200
    assert xmlrpc.client.loads(r.content)[0] == ("Invalid request",)
    with container.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def test_xmlrpc_oversized_body(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    container.settings.max_body_bytes = 100
    request = xmlrpc.client.dumps((1, "x" * 200, 1), "mailkit.email.unsubscribe")
    r = client.post("/rpc.fcgi", content=request)
    assert xmlrpc.client.loads(r.content)[0] == ("Request too large",)
