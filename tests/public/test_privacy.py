"""Privacy from the preferences page: request by POST, confirm by an emailed signed single-use link."""

from __future__ import annotations

import email
import email.policy
import json
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.consent import privacy_links
from herald.consent.models import ConsentEvent
from herald.consent.privacy_links import CONFIRM_JOB
from herald.container import Container
from herald.delivery import tokens
from herald.jobs.models import Job
from herald.settings import Settings
from herald.worker import run_job
from tests.conftest import auth
from tests.consent.privacy_factory import EMAIL, Person, address_status, scan, seed_person


def _ptoken(container: Container, person: Person) -> str:
    return tokens.make(container.signer, tokens.PREFERENCES, person.delivery_token)


def _confirm_jobs(container: Container) -> list[Job]:
    with container.transaction() as s:
        return list(s.scalars(select(Job).where(Job.kind == CONFIRM_JOB).order_by(Job.id)))


def _send_pending(container: Container) -> None:
    for job in _confirm_jobs(container):
        if job.status == "pending":
            run_job(container, job.id)


def _mails(settings: Settings) -> list[EmailMessage]:
    outbox = Path(settings.smtp_url.split(":", 1)[1]) / "new"
    found = []
    for path in sorted(outbox.glob("*")) if outbox.exists() else []:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def _link(msg: EmailMessage, action: str) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    match = re.search(rf"http://herald\.test(/privacy/{action}/\S+)", body.get_content())
    assert match, body.get_content()
    return match.group(1)


def _requested(client: TestClient, container: Container, settings: Settings, person: Person, action: str) -> str:
    r = client.post(f"/p/{_ptoken(container, person)}/{action}")
    assert r.status_code == 200 and "Check your inbox" in r.text
    _send_pending(container)
    msg = _mails(settings)[-1]
    assert msg["To"] == EMAIL
    return _link(msg, action)


def test_download_my_data_by_confirmed_link(
    client: TestClient, container: Container, settings: Settings, account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    r = client.post(f"/p/{_ptoken(container, person)}/export")
    assert r.status_code == 200 and "Check your inbox" in r.text
    # A second request moments later sends no second email.
    assert client.post(f"/p/{_ptoken(container, person)}/export").status_code == 200
    (job,) = _confirm_jobs(container)
    assert job.payload == {"action": "export", "address_id": person.address_id}  # never the email itself
    _send_pending(container)
    (msg,) = _mails(settings)
    assert msg["To"] == EMAIL and msg["Subject"] == "Confirm: download your data"
    path = _link(msg, "export")

    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    doc = r.json()
    assert doc["email"] == EMAIL and doc["contact"]["first_name"] == "Zebulon" and doc["deliveries"]
    again = client.get(path)
    assert again.status_code == 410 and "already used" in again.text


def test_erase_me_by_confirmed_link(
    client: TestClient, container: Container, settings: Settings, account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    path = _requested(client, container, settings, person, "erase")
    assert _mails(settings)[-1]["Subject"] == "Confirm: erase your data"
    # Opening the link only asks; a link prefetcher erases nobody.
    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200 and '<form method="post"' in page.text
    assert address_status(container, account["account_id"], EMAIL) == "spam_reported"

    done = client.post(path)
    assert done.status_code == 200 and "erased" in done.text
    assert scan(container, person.needles) == []
    assert client.post(path).status_code == 410
    assert client.get(path).status_code == 410
    with container.transaction() as s:
        erasure = s.scalars(select(ConsentEvent).where(ConsentEvent.kind == "erasure")).one()
        assert (erasure.source, erasure.ip, erasure.user_agent, erasure.address_id) == ("public", None, None, None)
    # The preferences link of the erased delivery no longer starts anything.
    assert client.post(f"/p/{_ptoken(container, person)}/export").status_code == 404
    # And the address, should it turn up again, is suppressed.
    r = client.put(f"/api/v1/addresses/{EMAIL}/status", json={"status": "opted_in"}, headers=auth(account))
    assert r.status_code == 409 and r.json()["current_status"] == "spam_reported"


def test_bad_foreign_and_expired_links_are_refused(
    client: TestClient,
    container: Container,
    settings: Settings,
    account: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    person = seed_person(container, account["account_id"])
    good = _ptoken(container, person)
    unsub = tokens.make(container.signer, tokens.UNSUBSCRIBE, person.delivery_token)
    for bad in ("garbage", good[:-2] + "xx", unsub):
        assert client.post(f"/p/{bad}/erase").status_code == 404
    assert _confirm_jobs(container) == []

    export_path = _requested(client, container, settings, person, "export")
    token = export_path.rsplit("/", 1)[1]
    assert client.get(f"/privacy/erase/{token}").status_code == 410  # an export link never erases
    assert client.post(f"/privacy/erase/{token}").status_code == 410
    assert client.get("/privacy/export/nonsense").status_code == 410
    monkeypatch.setattr(privacy_links, "LINK_MAX_AGE_SECONDS", -1)
    expired = client.get(export_path)
    assert expired.status_code == 410 and "expired" in expired.text
    monkeypatch.undo()
    assert address_status(container, account["account_id"], EMAIL) == "spam_reported"
    assert client.get(export_path).status_code == 200


def test_links_die_with_an_address_erased_meanwhile(
    client: TestClient, container: Container, settings: Settings, account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    erase_path = _requested(client, container, settings, person, "erase")
    client.post(f"/p/{_ptoken(container, person)}/export")  # queued, not sent yet
    assert client.delete(f"/api/v1/addresses/{EMAIL}", headers=auth(account)).status_code == 200
    assert client.get(erase_path).status_code == 410
    assert client.post(erase_path).status_code == 410
    assert _confirm_jobs(container) == []  # the queued confirmation went with the address
    mails = len(_mails(settings))
    _send_pending(container)
    assert len(_mails(settings)) == mails


def test_confirmation_goes_over_real_smtp(
    client: TestClient, container: Container, smtp_settings: Settings, smtp_sink: Any, account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    assert client.post(f"/p/{_ptoken(container, person)}/export").status_code == 200
    smtp_container = Container.build(smtp_settings)
    try:
        _send_pending(smtp_container)
    finally:
        smtp_container.engine.dispose()
    (received,) = smtp_sink.wait_for(1)
    assert received.rcpt_tos == [EMAIL]
    assert "/privacy/export/" in json.dumps(received.message.get_body(("plain",)).get_content())
    (job,) = _confirm_jobs(container)
    assert job.status == "done"


def test_preferences_page_offers_both_requests(
    client: TestClient, container: Container, settings: Settings, account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"], status="opted_in")
    token = _ptoken(container, person)
    page = client.get(f"/p/{token}")
    if page.status_code == 404 and "preferences" not in page.text.lower():
        pytest.skip("!!! the preferences page (GET /p/{token}) is not built yet")
    assert page.status_code == 200, page.text
    for action in ("export", "erase"):
        assert f'action="/p/{token}/{action}"' in page.text
        assert client.post(f"/p/{token}/{action}").status_code == 200
    assert sorted(j.payload["action"] for j in _confirm_jobs(container)) == ["erase", "export"]
