"""WebhookService: URL and event validation, encrypted secrets, tenancy, and emit reaching only subscribers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from herald.actor import Actor
from herald.container import Container
from herald.errors import Invalid, NotFound
from herald.jobs.models import Job
from herald.webhooks.models import Webhook
from herald.webhooks.outbox import EVENTS, WEBHOOK_JOB, emit
from herald.webhooks.service import SKYCORE_EVENTS, WebhookService, check_url


def svc(session: Any, account: dict[str, Any], container: Container) -> WebhookService:
    return WebhookService(session, Actor(account_id=account["account_id"], source="api"), cipher=container.cipher)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "https://example.com/a?b=c", "http://10.1.2.3/x", "http://[::1]:9000/", "HTTP://h"],
)
def test_any_http_url_is_accepted_including_loopback_and_private(url: str) -> None:
    assert check_url(f"  {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/",
        "javascript:alert(1)",
        "http://",
        "/relative",
        "http://exa mple.com/",
        "http://h:99999/",
        "http://h/" + "a" * 2000,
        "http://h/\r\nX: y",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as err:
        check_url(url)
    assert err.value.field == "url"


def test_defaults_secret_encryption_and_events(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        native = svc(s, account, container).create("http://127.0.0.1/n", secret="s3cret")
        sky = svc(s, account, container).create("http://127.0.0.1/s", format="skycore")
        assert native.events == list(EVENTS) and sky.events == list(SKYCORE_EVENTS)
        assert native.secret_enc and "s3cret" not in native.secret_enc
        assert container.cipher.decrypt(native.secret_enc) == "s3cret"
        assert sky.secret_enc is None
        chosen = svc(s, account, container).create("http://h/", events=["complaint", "complaint", "delivery.sent"])
        assert chosen.events == ["complaint", "delivery.sent"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["list.exploded"]}, "events"),
        ({"events": ["delivery.sent"], "format": "skycore"}, "events"),
        ({"format": "soap"}, "format"),
        ({"secret": "x" * 201}, "secret"),
    ],
)
def test_bad_input_creates_nothing(
    container: Container, account: dict[str, Any], kwargs: dict[str, Any], field: str
) -> None:
    with container.transaction() as s:
        with pytest.raises(Invalid) as err:
            svc(s, account, container).create("http://h/", **kwargs)
        assert err.value.field == field
        assert s.scalars(select(Webhook)).all() == []


def test_emit_queues_only_for_subscribed_hooks_of_the_account(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    with container.transaction() as s:
        wanted = svc(s, account, container).create("http://h/1", events=["list.subscribed"]).id
        svc(s, account, container).create("http://h/2", events=["complaint"])
        svc(s, other_account, container).create("http://h/3", events=["list.subscribed"])
        assert emit(s, account["account_id"], "list.subscribed", {"email": "a@example.com"}) == 1
    with container.transaction() as s:
        jobs = s.scalars(select(Job).where(Job.kind == WEBHOOK_JOB)).all()
        assert [(j.payload["webhook_id"], j.account_id) for j in jobs] == [(wanted, account["account_id"])]


def test_delete_and_tenancy(container: Container, account: dict[str, Any], other_account: dict[str, Any]) -> None:
    with container.transaction() as s:
        hook_id = svc(s, account, container).create("http://h/").id
    with container.transaction() as s:
        with pytest.raises(NotFound):
            svc(s, other_account, container).delete(hook_id)
        with pytest.raises(NotFound):
            svc(s, account, container).get(2**40)
    with container.transaction() as s:
        svc(s, account, container).delete(hook_id)
    with container.transaction() as s:
        with pytest.raises(NotFound):
            svc(s, account, container).get(hook_id)
        assert emit(s, account["account_id"], "list.subscribed", {"email": "a@example.com"}) == 0
