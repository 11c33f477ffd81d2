"""Webhook and postback delivery against a real HTTP receiver on loopback, run through the worker's run_job."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from herald.actor import Actor
from herald.app import create_app
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from herald.jobs import service as jobs
from herald.jobs.models import Job
from herald.lists.service import ListService
from herald.webhooks import delivery
from herald.webhooks.models import Webhook
from herald.webhooks.outbox import SKYCORE_JOB, WEBHOOK_JOB
from herald.worker import run_job
from tests.conftest import free_port


class Receiver:
    """A tiny HTTP server recording every POST; `status` is what it answers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _hook(container: Container, account_id: int, url: str, events: list[str], **kw: Any) -> int:
    secret = kw.pop("secret", None)
    with container.transaction() as s:
        hook = Webhook(
            account_id=account_id,
            url=url,
            events=events,
            secret_enc=container.cipher.encrypt(secret) if secret else None,
            **kw,
        )
        s.add(hook)
        s.flush()
        return hook.id


def _actor(account: dict[str, Any]) -> Actor:
    return Actor(account_id=account["account_id"], source="test")


def _set_status(container: Container, account: dict[str, Any], email: str, status: str) -> None:
    with container.transaction() as s:
        ConsentService(s, _actor(account)).set_status(email, status, create=True)


def _run_due(container: Container) -> list[int]:
    with container.transaction() as s:
        ids = [j.id for j in jobs.claim(s, owner="test")]
    for job_id in ids:
        run_job(container, job_id)
    return ids


def _jobs(container: Container) -> list[Job]:
    with container.transaction() as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


def _make_due(container: Container) -> None:
    with container.transaction() as s:
        s.execute(update(Job).where(Job.status == "pending").values(run_at=utcnow() - timedelta(seconds=1)))


def test_native_webhook_is_delivered_and_signed(
    container: Container, account: dict[str, Any], receiver: Receiver
) -> None:
    _hook(container, account["account_id"], receiver.url, ["address.status_changed"], secret="s3cret")
    _set_status(container, account, "Ann@Example.com", "opted_in")
    assert len(_run_due(container)) == 1
    (path, headers, body) = receiver.requests[0]
    assert path == "/hook" and headers["Content-Type"] == "application/json"
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["Herald-Signature"] == expected
    event = json.loads(body)
    assert set(event) == {"event", "at", "data"} and event["event"] == "address.status_changed"
    assert event["data"]["email"] == "ann@example.com" and event["data"]["to_status"] == "opted_in"
    job = _jobs(container)[0]
    assert (job.kind, job.status, job.attempts, job.last_error) == (WEBHOOK_JOB, "done", 1, None)


def test_no_secret_no_signature_and_other_events_not_sent(
    container: Container, account: dict[str, Any], other_account: dict[str, Any], receiver: Receiver
) -> None:
    _hook(container, account["account_id"], receiver.url, ["address.status_changed"])
    _hook(container, account["account_id"], receiver.url, ["topic.unsubscribed"])
    _hook(container, other_account["account_id"], receiver.url, ["address.status_changed"], secret="x")
    _set_status(container, account, "b@example.com", "opted_out")
    _run_due(container)
    assert len(receiver.requests) == 1
    assert "Herald-Signature" not in receiver.requests[0][1]


def test_skycore_postbacks_n303_and_n304(container: Container, account: dict[str, Any], receiver: Receiver) -> None:
    _hook(container, account["account_id"], receiver.url, ["list.subscribed", "list.unsubscribed"], format="skycore")
    with container.transaction() as s:
        lists = ListService(s, _actor(account))
        list_id = lists.create_list("Campaign").id
        lists.subscribe(list_id, "john@email.com")
    with container.transaction() as s:
        ListService(s, _actor(account)).unsubscribe(list_id, "john@email.com")
    _run_due(container)
    _run_due(container)  # the second event waited for the first (same subscriber)
    bodies = [body.decode() for _, _, body in receiver.requests]
    assert bodies == [
        "<?xml version='1.0'?><POSTBACK><ORIGIN>EMAIL_SUB</ORIGIN><CODE>N303</CODE>"
        f"<EMAIL>john@email.com</EMAIL><CAMPAIGNID>{list_id}</CAMPAIGNID></POSTBACK>",
        "<?xml version='1.0'?><POSTBACK><ORIGIN>EMAIL_SUB</ORIGIN><CODE>N304</CODE>"
        f"<EMAIL>john@email.com</EMAIL><CAMPAIGNID>{list_id}</CAMPAIGNID></POSTBACK>",
    ]
    assert receiver.requests[0][1]["Content-Type"].startswith("text/xml")
    assert "Herald-Signature" not in receiver.requests[0][1]
    assert [(j.kind, j.status) for j in _jobs(container)] == [(SKYCORE_JOB, "done"), (SKYCORE_JOB, "done")]


def test_skycore_retried_every_5_minutes_5_times_when_receiver_is_down(
    container: Container, account: dict[str, Any]
) -> None:
    assert jobs.next_delay(SKYCORE_JOB, 1) == 300 and jobs.next_delay(SKYCORE_JOB, 5) == 300
    down = f"http://127.0.0.1:{free_port()}/postback"
    _hook(container, account["account_id"], down, ["list.unsubscribed"], format="skycore")
    with container.transaction() as s:
        lists = ListService(s, _actor(account))
        list_id = lists.create_list("C").id
        lists.subscribe(list_id, "x@example.com")
        lists.unsubscribe(list_id, "x@example.com")
    for attempt in range(1, 7):
        before = utcnow()
        assert len(_run_due(container)) == 1
        job = _jobs(container)[0]
        assert job.attempts == attempt and job.last_error
        if attempt < 6:
            assert job.status == "pending"
            assert timedelta(seconds=299) <= job.run_at - before <= timedelta(seconds=302)
            assert _run_due(container) == []  # not due before its 5 minutes
            _make_due(container)
    assert job.status == "failed" and job.max_attempts == 6


def test_native_non_2xx_is_retried_on_backoff_then_delivered(
    container: Container, account: dict[str, Any], receiver: Receiver
) -> None:
    _hook(container, account["account_id"], receiver.url, ["address.status_changed"], secret="k")
    receiver.status = 500
    _set_status(container, account, "r@example.com", "opted_in")
    before = utcnow()
    _run_due(container)
    job = _jobs(container)[0]
    assert (job.status, job.attempts) == ("pending", 1) and "500" in (job.last_error or "")
    assert timedelta(seconds=4) <= job.run_at - before <= timedelta(seconds=10)
    receiver.status = 204
    _make_due(container)
    _run_due(container)
    job = _jobs(container)[0]
    assert (job.status, job.attempts) == ("done", 2)
    assert len(receiver.requests) == 2 and receiver.requests[0][2] == receiver.requests[1][2]


def test_order_is_kept_per_subscriber_across_retries(
    container: Container, account: dict[str, Any], receiver: Receiver
) -> None:
    _hook(container, account["account_id"], receiver.url, ["address.status_changed"])
    receiver.status = 503
    _set_status(container, account, "o@example.com", "opted_in")
    _set_status(container, account, "o@example.com", "opted_out")
    _set_status(container, account, "other@example.com", "opted_in")
    # the first event of o@ fails; its second waits, the other subscriber is not held back
    assert len(_run_due(container)) == 2
    receiver.status = 200
    _make_due(container)
    _run_due(container)
    _run_due(container)
    sent = [(json.loads(b)["data"]["email"], json.loads(b)["data"]["to_status"]) for _, _, b in receiver.requests]
    o_events = [s for s in sent if s[0] == "o@example.com"]
    assert o_events == [("o@example.com", "opted_in"), ("o@example.com", "opted_in"), ("o@example.com", "opted_out")]
    assert all(j.status == "done" for j in _jobs(container))


def test_deleted_webhook_gives_up(container: Container, account: dict[str, Any], receiver: Receiver) -> None:
    hook_id = _hook(container, account["account_id"], receiver.url, ["address.status_changed"])
    _set_status(container, account, "d@example.com", "opted_in")
    with container.transaction() as s:
        s.delete(s.get(Webhook, hook_id))
    _run_due(container)
    job = _jobs(container)[0]
    assert job.status == "failed" and receiver.requests == []


def test_signature_helper_matches_contract() -> None:
    assert delivery.sign("key", b"{}") == "sha256=" + hmac.new(b"key", b"{}", hashlib.sha256).hexdigest()


def test_in_process_worker_delivers_a_skycore_postback_within_seconds(
    container: Container, account: dict[str, Any], receiver: Receiver
) -> None:
    _hook(container, account["account_id"], receiver.url, ["list.unsubscribed"], format="skycore")
    with container.transaction() as s:
        lists = ListService(s, _actor(account))
        list_id = lists.create_list("C").id
        lists.subscribe(list_id, "w@example.com")
    with TestClient(create_app(container, run_worker=True)) as client:
        r = client.get(
            "/API/wxml/1.3/index.php",
            params={
                "action": "unsubscribeemail",
                "api_key": account["skycore"]["api_key"],
                "campaignid": list_id,
                "email": "w@example.com",
            },
        )
        assert "<STATUS>Success</STATUS>" in r.text
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(receiver.requests) == 1 and b"<CODE>N304</CODE>" in receiver.requests[0][2]
