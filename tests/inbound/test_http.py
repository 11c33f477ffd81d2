"""POST /inbound/messages: raw DSN and ARF messages over HTTP, guarded by the shared secret."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from herald.container import Container
from herald.inbound.models import InboundMessage
from tests.inbound import samples
from tests.public.factories import Mailed, mail, make_account_row

SECRET = "inbound-s3cret"
RFC822 = {"Content-Type": "message/rfc822"}


@pytest.fixture
def m(container: Container) -> Mailed:
    return mail(container, make_account_row(container))


@pytest.fixture
def with_secret(container: Container) -> None:
    container.settings = container.settings.model_copy(update={"inbound_secret": SECRET})


def _stored(container: Container) -> int:
    with container.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(InboundMessage)) or 0)


def _auth(secret: str = SECRET) -> dict[str, str]:
    return {**RFC822, "Authorization": f"Bearer {secret}"}


def test_hard_bounce_over_http(client: TestClient, container: Container, m: Mailed, with_secret: None) -> None:
    r = client.post(
        "/inbound/messages", content=samples.hard_bounce(f"<{m.token}@herald.test>", m.email), headers=_auth()
    )
    assert r.status_code == 202, r.text
    assert r.json()["outcome"] == "hard_bounce" and r.json()["kind"] == "dsn"
    assert m.status() == "bounced" and [e.kind for e in m.events()] == ["bounce"]


def test_soft_bounce_over_http_as_text_plain(
    client: TestClient, container: Container, m: Mailed, with_secret: None
) -> None:
    headers = {**_auth(), "Content-Type": "text/plain; charset=us-ascii"}
    r = client.post(
        "/inbound/messages", content=samples.soft_bounce(f"<{m.token}@herald.test>", m.email), headers=headers
    )
    assert r.status_code == 202 and r.json()["outcome"] == "soft_bounce"
    assert m.status() == "opted_in"


def test_complaint_over_http(client: TestClient, container: Container, m: Mailed, with_secret: None) -> None:
    raw = samples.complaint(f"<{m.token}@herald.test>", m.email)
    r = client.post("/inbound/messages", content=raw, headers=_auth())
    assert r.status_code == 202 and r.json()["outcome"] == "complaint"
    assert m.status() == "spam_reported"


def test_unmatched_over_http_is_accepted(
    client: TestClient, container: Container, m: Mailed, with_secret: None
) -> None:
    r = client.post("/inbound/messages", content=samples.hard_bounce("<x@y>", "who@example.org"), headers=_auth())
    assert r.status_code == 202 and r.json()["outcome"] == "unmatched"
    assert m.status() == "opted_in"


@pytest.mark.parametrize("headers", [RFC822, _auth("wrong"), {**RFC822, "Authorization": f"Basic {SECRET}"}])
def test_wrong_or_missing_secret_is_401_and_changes_nothing(
    client: TestClient, container: Container, m: Mailed, with_secret: None, headers: dict[str, str]
) -> None:
    r = client.post(
        "/inbound/messages", content=samples.hard_bounce(f"<{m.token}@herald.test>", m.email), headers=headers
    )
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert m.status() == "opted_in" and _stored(container) == 0


def test_without_secret_only_loopback_may_post(client: TestClient, container: Container, m: Mailed) -> None:
    raw = samples.hard_bounce(f"<{m.token}@herald.test>", m.email)
    # TestClient's peer is "testclient", not a loopback address.
    r = client.post("/inbound/messages", content=raw, headers=RFC822)
    assert r.status_code == 403 and m.status() == "opted_in" and _stored(container) == 0


def test_without_secret_loopback_client_is_accepted(live_server: Any, container: Container, m: Mailed) -> None:
    raw = samples.hard_bounce(f"<{m.token}@herald.test>", m.email)
    r = httpx.post(f"{live_server.url}/inbound/messages", content=raw, headers=RFC822, timeout=10)
    assert r.status_code == 202 and r.json()["outcome"] == "hard_bounce"
    assert m.status() == "bounced"


def test_bad_bodies_are_refused(client: TestClient, container: Container, m: Mailed, with_secret: None) -> None:
    container.settings = container.settings.model_copy(update={"max_body_bytes": 2048})
    big = samples.soft_bounce(f"<{m.token}@herald.test>", m.email) + b"x" * 4096
    assert client.post("/inbound/messages", content=big, headers=_auth()).status_code == 413
    json_headers = {**_auth(), "Content-Type": "application/json"}
    assert client.post("/inbound/messages", content=b'{"a":1}', headers=json_headers).status_code == 415
    assert client.post("/inbound/messages", content=b"  \r\n", headers=_auth()).status_code == 400
    assert _stored(container) == 0 and m.status() == "opted_in"
