"""Messages, opt-in rules and the outbox pages: locks shown with their reason, refusals shown, tenancy, CSRF."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.container import Container
from herald.delivery.transport import MaildirTransport
from herald.lists.models import MailingList
from herald.optin.models import OptinRule
from herald.sends.service import SendService
from herald.templates.models import Message
from tests.sends.factory import actor, send_in, world
from tests.ui.conftest import csrf_token


def _message(container: Container, account_id: int, name: str, *, customoptin: bool = True) -> int:
    with container.transaction() as s:
        msg = Message(
            account_id=account_id, name=name, subject=f"{name} subject", html="<p>x</p>", customoptin=customoptin
        )
        s.add(msg)
        s.flush()
        return msg.id


def _list(container: Container, account_id: int, name: str = "Newsletter") -> int:
    with container.transaction() as s:
        lst = MailingList(account_id=account_id, name=name)
        s.add(lst)
        s.flush()
        return lst.id


def test_message_create_edit_and_lock(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    assert ui_client.get("/ui/messages/new").status_code == 200
    r = ui_client.post("/ui/messages/new", data={"csrf_token": token, "name": "", "subject": "Hi"})
    assert r.status_code == 422 and "name: is required" in r.text
    r = ui_client.post(
        "/ui/messages/new",
        data={"csrf_token": token, "name": "Confirm", "subject": "Please confirm", "customoptin": "1"},
    )
    assert r.status_code == 200 and "Created message" in r.text
    with container.sessions() as s:
        msg = s.scalars(select(Message)).one()
    r = ui_client.post(
        f"/ui/messages/{msg.id}",
        data={"csrf_token": token, "name": "Confirm v2", "subject": "Please", "customoptin": "1"},
    )
    assert "Saved message" in r.text
    list_id = _list(container, account["account_id"])
    r = ui_client.post(
        "/ui/optin", data={"csrf_token": token, "name": "Welcome", "list": str(list_id), "message_id": str(msg.id)}
    )
    assert "its message is now locked" in r.text
    listing = ui_client.get("/ui/messages").text
    assert "🔒 locked" in listing and "“Welcome”" in listing
    page = ui_client.get(f"/ui/messages/{msg.id}").text
    assert (
        "Locked:" in page
        and "the opt-in rule" in page
        and "Welcome" in page
        and '<fieldset class="plain" disabled>' in page
    )
    r = ui_client.post(f"/ui/messages/{msg.id}", data={"csrf_token": token, "name": "Hacked", "subject": "Hacked"})
    assert r.status_code == 422 and "cannot be edited" in r.text
    with container.sessions() as s:
        assert s.get(Message, msg.id).name == "Confirm v2"  # type: ignore[union-attr]


def test_optin_rules_refusals_are_shown(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    aid = account["account_id"]
    good, plain = _message(container, aid, "Confirm"), _message(container, aid, "Plain", customoptin=False)
    list_id = _list(container, aid)
    assert "No opt-in rules" in ui_client.get("/ui/optin").text
    r = ui_client.post(
        "/ui/optin", data={"csrf_token": token, "name": "R", "list": str(list_id), "message_id": str(plain)}
    )
    assert r.status_code == 422 and "not a custom opt-in message" in r.text
    r = ui_client.post("/ui/optin", data={"csrf_token": token, "name": "R", "list": "", "message_id": str(good)})
    assert r.status_code == 422 and "catch-all" in r.text
    assert (
        ui_client.post(
            "/ui/optin", data={"csrf_token": token, "name": "R", "list": str(list_id), "message_id": str(good)}
        ).status_code
        == 200
    )
    r = ui_client.post(
        "/ui/optin", data={"csrf_token": token, "name": "R2", "list": str(list_id), "message_id": str(good)}
    )
    assert r.status_code == 422 and "already has an opt-in rule" in r.text
    r = ui_client.post(
        "/ui/optin", data={"csrf_token": token, "name": "Any", "list": "catch-all", "message_id": str(good)}
    )
    assert "Created opt-in rule" in r.text
    listing = ui_client.get("/ui/optin").text
    assert "Catch-all" in listing and "Newsletter" in listing
    with container.sessions() as s:
        rules = s.scalars(select(OptinRule).order_by(OptinRule.id)).all()
        assert [(r.name, r.list_id) for r in rules] == [("R", list_id), ("Any", None)]
        rule_id = rules[0].id
    assert ui_client.get(f"/ui/optin/{rule_id}").status_code == 200
    r = ui_client.post(f"/ui/optin/{rule_id}", data={"csrf_token": token, "name": "R", "message_id": str(plain)})
    assert r.status_code == 422 and "not a custom opt-in message" in r.text
    r = ui_client.post(
        f"/ui/optin/{rule_id}", data={"csrf_token": token, "name": "Renamed", "message_id": str(good), "paused": "1"}
    )
    assert "Saved opt-in rule" in r.text
    assert "Deleted the opt-in rule" in ui_client.post(f"/ui/optin/{rule_id}/delete", data={"csrf_token": token}).text


def test_other_accounts_messages_and_rules_are_404_and_csrf_holds(
    ui_client: TestClient, other_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    aid = account["account_id"]
    msg = _message(container, aid, "Confirm")
    list_id = _list(container, aid)
    ui_client.post("/ui/optin", data={"csrf_token": token, "name": "R", "list": str(list_id), "message_id": str(msg)})
    with container.sessions() as s:
        rule_id = s.scalars(select(OptinRule.id)).one()
    other = csrf_token(other_client)
    assert other_client.get(f"/ui/messages/{msg}").status_code == 404
    assert (
        other_client.post(f"/ui/messages/{msg}", data={"csrf_token": other, "name": "x", "subject": "y"}).status_code
        == 404
    )
    assert other_client.post(f"/ui/messages/{msg}/delete", data={"csrf_token": other}).status_code == 404
    assert other_client.get(f"/ui/optin/{rule_id}").status_code == 404
    assert other_client.post(f"/ui/optin/{rule_id}/delete", data={"csrf_token": other}).status_code == 404
    assert "Confirm" not in other_client.get("/ui/messages").text
    # No token, no change.
    assert ui_client.post(f"/ui/messages/{msg}/delete").status_code == 403
    assert ui_client.post(f"/ui/optin/{rule_id}/delete", data={"csrf_token": "nope"}).status_code == 403
    assert ui_client.post("/ui/messages/new", data={"name": "x", "subject": "y"}).status_code == 403
    with container.sessions() as s:
        assert s.get(Message, msg).deleted_at is None  # type: ignore[union-attr]
        assert s.scalars(select(OptinRule.id)).all() == [rule_id]
        assert s.scalars(select(Message.id)).all() == [msg]


def _mail(path: Path, send_id: int | None, subject: str, html: str) -> None:
    headers = f"X-Herald-Send: {send_id}\r\n" if send_id is not None else ""
    body = (
        f"From: a@acme.test\r\nTo: ann@example.com\r\nSubject: {subject}\r\n{headers}MIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n\r\n' + html
    )
    asyncio.run(MaildirTransport(path).send("a@acme.test", "ann@example.com", body.encode()))


def test_outbox_shows_only_the_accounts_mail_sandboxed(
    ui_client: TestClient,
    other_client: TestClient,
    container: Container,
    account: dict[str, Any],
    other_account: dict[str, Any],
) -> None:
    assert "Nothing sent yet" in ui_client.get("/ui/outbox").text
    with container.transaction() as s:
        mine = SendService(s, actor(account["account_id"])).create(send_in(world(s, account["account_id"]))).id
        theirs = (
            SendService(s, actor(other_account["account_id"])).create(send_in(world(s, other_account["account_id"]))).id
        )
    path = Path(container.settings.smtp_url.split(":", 1)[1])
    _mail(path, mine, "Mine", "<p>Hello</p><script>alert(1)</script>")
    _mail(path, theirs, "Theirs", "<p>secret</p>")
    _mail(path, None, "Privacy link", "<p>erase</p>")
    listing = ui_client.get("/ui/outbox").text
    assert "Mine" in listing and "Theirs" not in listing and "Privacy link" not in listing and "1 message" in listing
    names = {p.name: p for p in (path / "new").iterdir()}
    by_subject = {p.read_text().split("Subject: ", 1)[1].splitlines()[0]: n for n, p in names.items()}
    page = ui_client.get(f"/ui/outbox/{by_subject['Mine']}")
    assert page.status_code == 200 and 'sandbox=""' in page.text and "<script>alert" not in page.text
    assert "X-Herald-Send" in page.text
    assert ui_client.get(f"/ui/outbox/{by_subject['Theirs']}").status_code == 404
    assert ui_client.get(f"/ui/outbox/{by_subject['Privacy link']}").status_code == 404
    assert ui_client.get("/ui/outbox/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert ui_client.get("/ui/outbox/nope").status_code == 404
    assert "Theirs" in other_client.get("/ui/outbox").text and "Mine" not in other_client.get("/ui/outbox").text


def test_outbox_says_so_when_mail_goes_to_smtp(ui_client: TestClient, container: Container) -> None:
    container.settings = container.settings.model_copy(update={"smtp_url": "smtp://user:secret@relay.test:2525?pool=4"})
    page = ui_client.get("/ui/outbox").text
    assert "Mail goes to an SMTP relay" in page and "relay.test:2525" in page and "secret" not in page
