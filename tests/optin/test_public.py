"""GET /c/{token}: one click confirms, branded pages, friendly errors for bad links."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.accounts.models import Account
from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from herald.lists.service import ListService
from herald.optin import public
from herald.optin.render import confirm_token
from tests.optin.factories import admin, make_list, records


def _pending(container: Container, account: dict[str, Any], email: str = "a@example.com") -> tuple[int, str]:
    lid = make_list(container, account["account_id"])
    with container.transaction() as s:
        sub_id = ListService(s, admin(account)).subscribe(lid, email, status="unconfirmed").id
    [rec] = records(container, sub_id)
    return sub_id, "/c/" + confirm_token(container.signer, rec.id)


def _status(container: Container, account: dict[str, Any], sub_id: int) -> str:
    with container.transaction() as s:
        return ListService(s, admin(account)).get_subscription(sub_id).status


def test_branded_confirmation_page(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        acc = s.get(Account, account["account_id"])
        assert acc is not None
        acc.branding = {
            "name": "Acme <Shop>",
            "logo_url": "https://cdn.acme.example/logo.png",
            "color": "#ff6600",
            "footer": "Acme Ltd, 1 Road",
        }
    sub_id, link = _pending(container, account)
    r = client.get(link)
    assert r.status_code == 200
    assert "Acme &lt;Shop&gt;" in r.text and "https://cdn.acme.example/logo.png" in r.text
    assert "#ff6600" in r.text and "Acme Ltd, 1 Road" in r.text
    assert _status(container, account, sub_id) == "active"


def test_unsafe_branding_is_not_rendered(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        acc = s.get(Account, account["account_id"])
        assert acc is not None
        acc.branding = {"logo_url": "javascript:alert(1)", "color": "red;}</style><script>x()</script>"}
    _, link = _pending(container, account)
    r = client.get(link)
    assert r.status_code == 200 and "javascript:" not in r.text and "<script>" not in r.text


@pytest.mark.parametrize("mangle", [lambda t: t + "x", lambda t: t[:-3], lambda t: "garbage", lambda t: "a.b.c"])
def test_tampered_link_is_a_friendly_404(
    client: TestClient, container: Container, account: dict[str, Any], mangle: Any
) -> None:
    sub_id, link = _pending(container, account)
    r = client.get("/c/" + mangle(link.removeprefix("/c/")))
    assert r.status_code == 404 and "not valid" in r.text and r.headers["content-type"].startswith("text/html")
    assert _status(container, account, sub_id) == "unconfirmed"


def test_token_of_another_purpose_is_refused(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    sub_id, _ = _pending(container, account)
    [rec] = records(container, sub_id)
    r = client.get("/c/" + container.signer.sign("delivery.u", {"r": rec.id}))
    assert r.status_code == 404
    assert _status(container, account, sub_id) == "unconfirmed"


def test_expired_link(
    client: TestClient, container: Container, account: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sub_id, link = _pending(container, account)
    monkeypatch.setattr(public, "LINK_MAX_AGE", -1)
    r = client.get(link)
    assert r.status_code == 404 and "expired" in r.text
    assert _status(container, account, sub_id) == "unconfirmed"


def test_unknown_record(client: TestClient, container: Container) -> None:
    assert client.get("/c/" + confirm_token(container.signer, 987654)).status_code == 404


def test_spam_reported_meanwhile_cannot_confirm(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    sub_id, link = _pending(container, account)
    with container.transaction() as s:
        ConsentService(s, Actor(account_id=account["account_id"], source="test")).set_status(
            "a@example.com", "spam_reported"
        )
    r = client.get(link)
    assert r.status_code == 409 and "cannot be confirmed" in r.text
    assert _status(container, account, sub_id) == "unconfirmed"
    assert not records(container, sub_id)[0].confirmed


def test_opted_in_address_stays_opted_in(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        ConsentService(s, Actor(account_id=account["account_id"], source="test")).set_status(
            "a@example.com", "opted_in", create=True
        )
    sub_id, link = _pending(container, account)
    assert client.get(link).status_code == 200
    assert _status(container, account, sub_id) == "active"
