"""The opt-in email at a real SMTP sink: the rule's subject, a direct confirmation link, bounces recorded."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.consent.service import ConsentService
from herald.container import Container
from herald.jobs import service as jobs
from herald.jobs.models import Job
from herald.settings import Settings
from herald.worker import run_job
from tests.conftest import auth
from tests.optin.factories import admin, delete_message, make_list, make_message, records
from tests.smtp_sink import SmtpSink

LINK = re.compile(r"http://herald\.test/c/[A-Za-z0-9_\-\.]+")


def run_optin_jobs(container: Container) -> int:
    """Claim and run every due job (the worker's jobs step, synchronously)."""
    import herald.optin.sender  # noqa: F401  (registers the handler, as the worker's load_features does)

    with container.transaction() as s:
        ids = [j.id for j in jobs.claim(s, owner="test")]
    for job_id in ids:
        run_job(container, job_id)
    return len(ids)


def _signup(client: TestClient, creds: dict[str, Any], list_id: int, email: str) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/lists/{list_id}/subscriptions", json={"email": email, "status": "unconfirmed"}, headers=auth(creds)
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _body(msg: Any, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    return "" if part is None else str(part.get_content())


def test_rule_email_arrives_and_link_confirms(
    client: TestClient, container: Container, account: dict[str, Any], smtp_settings: Settings, smtp_sink: SmtpSink
) -> None:
    container.settings = smtp_settings
    aid = account["account_id"]
    lid = make_list(container, aid)
    mid = make_message(container, aid)
    r = client.post(
        "/api/v1/optin-automations",
        json={"list_id": lid, "message_id": mid, "name": "Summer Competition Optin"},
        headers=auth(account),
    )
    assert r.status_code == 201
    sub = _signup(client, account, lid, "Ann@Example.com")
    assert sub["status"] == "unconfirmed"
    assert run_optin_jobs(container) == 1
    [got] = smtp_sink.to("ann@example.com")
    msg = got.message
    assert msg["Subject"] == "Confirm your entry, "
    assert msg["From"].addresses[0].addr_spec == "news@acme.example"
    html, text = _body(msg, "html"), _body(msg, "plain")
    links = set(LINK.findall(html)) | set(LINK.findall(text))
    assert len(links) == 1, (html, text)
    link = links.pop()
    assert f'href="{link}"' in html
    [rec] = records(container, sub["id"])
    assert rec.completed and not rec.error and rec.sent_at is not None

    page = client.get(link.replace("http://herald.test", ""))
    assert page.status_code == 200 and "Subscription confirmed" in page.text
    subs = client.get(f"/api/v1/lists/{lid}/subscriptions", headers=auth(account)).json()["items"]
    assert [(s["email"], s["status"]) for s in subs] == [("ann@example.com", "active")]
    addr = client.get("/api/v1/addresses/ann@example.com", headers=auth(account)).json()
    assert addr["status"] == "opted_in"
    events = client.get("/api/v1/addresses/ann@example.com/events", headers=auth(account)).json()["items"]
    assert ("public", "pending", "opted_in") in [(e["source"], e["from_status"], e["to_status"]) for e in events]
    assert ("public", "unconfirmed", "active") in [(e["source"], e["from_status"], e["to_status"]) for e in events]
    [rec] = records(container, sub["id"])
    assert rec.confirmed and rec.confirmed_at is not None

    again = client.get(link.replace("http://herald.test", ""))
    assert again.status_code == 200 and "Already confirmed" in again.text


def test_message_without_tag_gets_link_appended_and_default_message_without_rule(
    client: TestClient, container: Container, account: dict[str, Any], smtp_settings: Settings, smtp_sink: SmtpSink
) -> None:
    container.settings = smtp_settings
    aid = account["account_id"]
    lid, lid2 = make_list(container, aid), make_list(container, aid, "Weekly")
    mid = make_message(
        container, aid, subject="Please confirm", html="<html><body><p>Hello</p></body></html>", text="Hello"
    )
    client.post(
        "/api/v1/optin-automations", json={"list_id": lid, "message_id": mid, "name": "r"}, headers=auth(account)
    )
    delete_message(container, mid)  # a deleted message is still sent
    _signup(client, account, lid, "a@example.com")
    _signup(client, account, lid2, "b@example.com")
    run_optin_jobs(container)
    [a] = smtp_sink.to("a@example.com")
    assert a.message["Subject"] == "Please confirm"
    html, text = _body(a.message, "html"), _body(a.message, "plain")
    assert LINK.search(html) and html.index(LINK.findall(html)[0]) < html.index("</body>")
    assert text.startswith("Hello") and LINK.search(text)
    [b] = smtp_sink.to("b@example.com")
    assert b.message["Subject"] == "Please confirm your subscription to Weekly"
    assert LINK.search(_body(b.message, "plain")) and LINK.search(_body(b.message, "html"))


def test_hard_bounce_is_recorded_and_address_bounced(
    client: TestClient, container: Container, account: dict[str, Any], smtp_settings: Settings, smtp_sink: SmtpSink
) -> None:
    container.settings = smtp_settings
    smtp_sink.handler.refuse["gone@example.com"] = "550 5.1.1 no such user"
    lid = make_list(container, account["account_id"])
    sub = _signup(client, account, lid, "gone@example.com")
    run_optin_jobs(container)
    [rec] = records(container, sub["id"])
    assert (rec.completed, rec.error, rec.errortype) == (True, True, "Hard bounce")
    with container.transaction() as s:
        assert ConsentService(s, admin(account)).get("gone@example.com").status == "bounced"


def test_temporary_failure_retries_then_sends(
    client: TestClient, container: Container, account: dict[str, Any], smtp_settings: Settings, smtp_sink: SmtpSink
) -> None:
    container.settings = smtp_settings
    smtp_sink.handler.temporary_failures = 1
    lid = make_list(container, account["account_id"])
    sub = _signup(client, account, lid, "slow@example.com")
    run_optin_jobs(container)
    [rec] = records(container, sub["id"])
    assert not rec.completed and not rec.error
    with container.transaction() as s:
        job = s.scalars(select(Job)).one()
        assert job.status == "pending" and job.attempts == 1
        job.run_at = job.created_at  # due now
    run_optin_jobs(container)
    assert len(smtp_sink.to("slow@example.com")) == 1
    [rec] = records(container, sub["id"])
    assert rec.completed and not rec.error


def test_soft_bounce_after_last_attempt(
    client: TestClient, container: Container, account: dict[str, Any], smtp_settings: Settings, smtp_sink: SmtpSink
) -> None:
    container.settings = smtp_settings
    smtp_sink.handler.temporary_failures = 100
    lid = make_list(container, account["account_id"])
    sub = _signup(client, account, lid, "full@example.com")
    with container.transaction() as s:
        job = s.scalars(select(Job)).one()
        job.attempts = job.max_attempts - 1  # the next claim is the last attempt
    run_optin_jobs(container)
    [rec] = records(container, sub["id"])
    assert (rec.completed, rec.error, rec.errortype) == (True, True, "Soft bounce")
    with container.transaction() as s:
        assert s.scalars(select(Job)).one().status == "failed"


def test_worker_sends_queued_optin_email(
    client: TestClient, container: Container, account: dict[str, Any], smtp_settings: Settings, smtp_sink: SmtpSink
) -> None:
    import asyncio

    from herald.worker import Worker

    container.settings = smtp_settings
    lid = make_list(container, account["account_id"])
    _signup(client, account, lid, "worker@example.com")

    async def run_briefly() -> None:
        worker = Worker(container, name="test")
        task = asyncio.create_task(worker.run())
        for _ in range(200):
            if smtp_sink.to("worker@example.com"):
                break
            await asyncio.sleep(0.05)
        worker.stop()
        await task

    asyncio.run(run_briefly())
    assert len(smtp_sink.to("worker@example.com")) == 1
