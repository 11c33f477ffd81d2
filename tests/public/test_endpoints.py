"""Public pages through the real ASGI app: one-click unsubscribe, preferences, open pixel, click redirect."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from herald.delivery import tokens
from herald.jobs.models import Job
from herald.webhooks.models import Webhook
from tests.public.factories import Mailed, mail, make_account_row, make_topic


@pytest.fixture
def account_id(container: Container) -> int:
    return make_account_row(container, branding={"name": "Acme News", "color": "#ffcc00", "footer": "Acme, 1 Road"})


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no form token on the page"
    return match.group(1)


def _webhook(container: Container, account_id: int, *events: str) -> None:
    with container.transaction() as s:
        s.add(Webhook(account_id=account_id, url="http://127.0.0.1:9/hook", events=list(events), format="native"))


def _webhook_events(container: Container) -> list[str]:
    with container.transaction() as s:
        return [j.payload["event"] for j in s.scalars(select(Job).order_by(Job.id))]


# -- one-click unsubscribe ----------------------------------------------------------------------------
def test_one_click_post_is_200_without_redirect_or_cookie_and_writes_ledger(
    client: TestClient, container: Container, account_id: int
) -> None:
    m = mail(container, account_id)
    r = client.post(
        f"/u/{m.url(tokens.UNSUBSCRIBE)}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailClient/1.0"},
        follow_redirects=False,
    )
    assert r.status_code == 200
    assert "set-cookie" not in r.headers and "location" not in r.headers
    assert "unsubscribed" in r.text.lower()
    assert m.status() == "opted_out"
    last = m.ledger()[-1]
    assert (last.source, last.from_status, last.to_status, last.send_id) == (
        "public",
        "opted_in",
        "opted_out",
        m.send_id,
    )
    assert last.user_agent == "MailClient/1.0" and last.ip
    assert [e.kind for e in m.events()] == ["unsubscribe"]


def test_one_click_accepts_multipart_and_empty_bodies(
    client: TestClient, container: Container, account_id: int
) -> None:
    m1 = mail(container, account_id)
    m2 = mail(container, account_id, "bob@example.com")
    r = client.post(f"/u/{m1.url(tokens.UNSUBSCRIBE)}", files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200 and m1.status() == "opted_out"
    r = client.post(f"/u/{m2.url(tokens.UNSUBSCRIBE)}", content=b"\xff\x00not a form", headers={"Content-Type": "x/y"})
    assert r.status_code == 200 and m2.status() == "opted_out"


def test_one_click_is_idempotent(client: TestClient, container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    url = f"/u/{m.url(tokens.UNSUBSCRIBE)}"
    assert client.post(url).status_code == 200
    before = len(m.ledger())
    r = client.post(url)
    assert r.status_code == 200 and "already unsubscribed" in r.text
    assert len(m.ledger()) == before and len(m.events("unsubscribe")) == 1


@pytest.mark.parametrize("status", ["bounced", "spam_reported"])
def test_one_click_on_suppressed_address_changes_nothing(
    client: TestClient, container: Container, account_id: int, status: str
) -> None:
    m = mail(container, account_id, status=status)
    before = len(m.ledger())
    r = client.post(f"/u/{m.url(tokens.UNSUBSCRIBE)}")
    assert r.status_code == 200
    assert m.status() == status and len(m.ledger()) == before and m.events() == []


def test_one_click_with_topic_unsubscribes_from_that_topic_only(
    client: TestClient, container: Container, account_id: int
) -> None:
    topic = make_topic(container, account_id, "Weekly digest")
    m = mail(container, account_id, topic_id=topic)
    page = client.get(f"/u/{m.url(tokens.UNSUBSCRIBE)}")
    assert "Weekly digest" in page.text
    r = client.post(f"/u/{m.url(tokens.UNSUBSCRIBE)}")
    assert r.status_code == 200 and "Weekly digest" in r.text
    assert m.status() == "opted_in"
    assert m.unsubscribed_topics() == {topic}
    assert [e.kind for e in m.events()] == ["unsubscribe"]


def test_one_click_makes_a_pause_permanent(client: TestClient, container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    with container.transaction() as s:
        ConsentService(s, Actor(account_id, "test")).set_status(
            m.email, "opted_out", until=utcnow() + timedelta(days=14)
        )
    assert client.post(f"/u/{m.url(tokens.UNSUBSCRIBE)}").status_code == 200
    with container.transaction() as s:
        addr = ConsentService(s, Actor(account_id, "test")).get(m.email)
        assert addr.status == "opted_out" and addr.opted_out_until is None
    assert m.ledger()[-1].reason and "one-click" in (m.ledger()[-1].reason or "")


def test_get_unsubscribe_page_changes_nothing_and_is_branded(
    client: TestClient, container: Container, account_id: int
) -> None:
    m = mail(container, account_id)
    r = client.get(f"/u/{m.url(tokens.UNSUBSCRIBE)}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in r.text and "Acme News" in r.text and "Acme, 1 Road" in r.text
    assert 'method="post"' in r.text and m.email in r.text
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-frame-options"] == "DENY"
    assert m.status() == "opted_in" and m.events() == []


def test_tampered_or_foreign_tokens_are_refused(client: TestClient, container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    good = m.url(tokens.UNSUBSCRIBE)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    other_purpose = m.url(tokens.OPEN)
    made_up = tokens.make(container.signer, tokens.UNSUBSCRIBE, "0" * 32)
    for token in (tampered, other_purpose, made_up, "nonsense"):
        for method in ("GET", "POST"):
            r = client.request(method, f"/u/{token}")
            assert r.status_code == 404 and "link doesn’t work" in r.text
        assert client.get(f"/p/{token}").status_code == 404
    assert m.status() == "opted_in" and m.events() == []


def test_unsubscribe_emits_status_webhook(client: TestClient, container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    _webhook(container, account_id, "address.status_changed")
    assert client.post(f"/u/{m.url(tokens.UNSUBSCRIBE)}").status_code == 200
    assert _webhook_events(container) == ["address.status_changed"]


# -- preferences ----------------------------------------------------------------------------------------
def test_preferences_page_lists_enabled_topics_with_state(
    client: TestClient, container: Container, account_id: int
) -> None:
    news = make_topic(container, account_id, "News", description="Monthly")
    offers = make_topic(container, account_id, "Offers")
    make_topic(container, account_id, "Retired", enabled=False)
    m = mail(container, account_id)
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id, "test"))
        svc.unsubscribe_topic(svc.get(m.email), offers)
    r = client.get(f"/p/{m.url(tokens.PREFERENCES)}")
    assert r.status_code == 200
    assert "Retired" not in r.text and "Monthly" in r.text
    assert f'id="topic-{news}" checked aria-describedby="topic-{news}-desc">' in r.text
    assert not re.search(rf'value="{offers}" id="topic-{offers}" checked', r.text)
    for days in (14, 30, 60, 90):
        assert f'<option value="{days}">' in r.text
    token = m.url(tokens.PREFERENCES)
    assert f'action="/p/{token}/export"' in r.text and f'action="/p/{token}/erase"' in r.text
    assert '<label for="pause-days">' in r.text


def test_preferences_topics_change_in_one_post(client: TestClient, container: Container, account_id: int) -> None:
    news = make_topic(container, account_id, "News")
    offers = make_topic(container, account_id, "Offers")
    m = mail(container, account_id)
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id, "test"))
        svc.unsubscribe_topic(svc.get(m.email), offers)
    url = f"/p/{m.url(tokens.PREFERENCES)}"
    csrf = _csrf(client.get(url).text)
    r = client.post(url, data={"csrf_token": csrf, "topic": [str(offers)], "action": "keep"})
    assert r.status_code == 200, r.text
    assert "unsubscribed from “News”" in r.text and "“Offers” emails again" in r.text
    assert m.unsubscribed_topics() == {news}
    assert m.status() == "opted_in"
    topic_events = [(e.topic_id, e.to_status, e.source) for e in m.ledger() if e.kind == "topic"]
    assert topic_events[-2:] == [(news, "unsubscribed", "public"), (offers, "subscribed", "public")]
    assert len(m.events("unsubscribe")) == 1


def test_preferences_pause(client: TestClient, container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    url = f"/p/{m.url(tokens.PREFERENCES)}"
    r = client.post(url, data={"csrf_token": _csrf(client.get(url).text), "action": "pause", "pause_days": "30"})
    assert r.status_code == 200 and "paused until" in r.text
    with container.transaction() as s:
        addr = ConsentService(s, Actor(account_id, "test")).get(m.email)
        assert addr.status == "opted_out" and addr.status_before_optout == "opted_in"
        assert addr.opted_out_until is not None
        assert timedelta(days=29) < addr.opted_out_until - utcnow() <= timedelta(days=30)
    assert m.events("unsubscribe") == []


def test_preferences_pause_refuses_odd_durations(client: TestClient, container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    url = f"/p/{m.url(tokens.PREFERENCES)}"
    before = len(m.ledger())
    r = client.post(url, data={"csrf_token": _csrf(client.get(url).text), "action": "pause", "pause_days": "3650"})
    assert r.status_code == 400 and "Nothing was changed" in r.text
    assert m.status() == "opted_in" and len(m.ledger()) == before


def test_preferences_unsubscribe_from_everything(client: TestClient, container: Container, account_id: int) -> None:
    topic = make_topic(container, account_id, "News")
    m = mail(container, account_id, topic_id=topic)
    url = f"/p/{m.url(tokens.PREFERENCES)}"
    csrf = _csrf(client.get(url).text)
    r = client.post(url, data={"csrf_token": csrf, "topic": [str(topic)], "action": "unsubscribe"})
    assert r.status_code == 200 and "unsubscribed from all" in r.text
    assert m.status() == "opted_out"
    last = m.ledger()[-1]
    assert (last.source, last.to_status, last.send_id) == ("public", "opted_out", m.send_id)
    # The same form again changes nothing.
    before = len(m.ledger())
    r = client.post(url, data={"csrf_token": csrf, "topic": [str(topic)], "action": "unsubscribe"})
    assert r.status_code == 200 and "already unsubscribed" in r.text and len(m.ledger()) == before


def test_preferences_post_without_valid_form_token_changes_nothing(
    client: TestClient, container: Container, account_id: int
) -> None:
    m = mail(container, account_id)
    other = mail(container, account_id, "bob@example.com")
    url = f"/p/{m.url(tokens.PREFERENCES)}"
    foreign = _csrf(client.get(f"/p/{other.url(tokens.PREFERENCES)}").text)
    for data in ({"action": "unsubscribe"}, {"action": "unsubscribe", "csrf_token": foreign}):
        r = client.post(url, data=data)
        assert r.status_code == 403 and "Please try again" in r.text
    assert m.status() == "opted_in" and m.ledger()[-1].source == "test"


def test_preferences_of_suppressed_address_cannot_resume_topics(
    client: TestClient, container: Container, account_id: int
) -> None:
    topic = make_topic(container, account_id, "News")
    m = mail(container, account_id)
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id, "test"))
        addr = svc.get(m.email)
        svc.unsubscribe_topic(addr, topic)
        svc.transition(addr, "spam_reported")
    url = f"/p/{m.url(tokens.PREFERENCES)}"
    r = client.post(
        url,
        data={"csrf_token": _csrf(client.get(url).text), "topic": [str(topic)], "action": "pause", "pause_days": "14"},
    )
    assert r.status_code == 200 and "cannot be resumed" in r.text
    assert m.status() == "spam_reported" and m.unsubscribed_topics() == {topic}


# -- tracking -----------------------------------------------------------------------------------------
def test_open_pixel_records_open_and_emits_webhook(client: TestClient, container: Container, account_id: int) -> None:
    _webhook(container, account_id, "delivery.opened")
    m = mail(container, account_id)
    r = client.get(f"/t/o/{m.url(tokens.OPEN)}.gif", headers={"User-Agent": "Thunderbird"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert r.content.startswith(b"GIF89a") and "no-store" in r.headers["cache-control"]
    opens = m.events("open")
    assert len(opens) == 1 and opens[0].user_agent == "Thunderbird" and opens[0].send_id == m.send_id
    assert _webhook_events(container) == ["delivery.opened"]


def test_open_pixel_with_bad_token_is_still_a_gif_and_records_nothing(
    client: TestClient, container: Container, account_id: int
) -> None:
    m = mail(container, account_id)
    for token in ("garbage", m.url(tokens.CLICK), m.url(tokens.OPEN)[:-3] + "xyz"):
        r = client.get(f"/t/o/{token}.gif")
        assert r.status_code == 200 and r.content.startswith(b"GIF89a")
    assert m.events() == []


def test_click_records_and_redirects_to_recorded_url(client: TestClient, container: Container, account_id: int) -> None:
    _webhook(container, account_id, "delivery.clicked")
    m = mail(container, account_id, links=("https://example.com/a?x=1&y=2", "https://example.org/b"))
    r = client.get(f"/t/c/{m.url(tokens.CLICK)}/1", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://example.org/b"
    clicks = m.events("click")
    assert len(clicks) == 1 and clicks[0].detail == "https://example.org/b" and clicks[0].link_id is not None
    assert _webhook_events(container) == ["delivery.clicked"]


def test_click_cannot_redirect_anywhere_else(client: TestClient, container: Container, account_id: int) -> None:
    m = mail(container, account_id, links=("https://example.com/a", "javascript:alert(1)"))
    other = mail(container, account_id, "bob@example.com", links=("https://example.com/a", "https://evil.example/x"))
    token = m.url(tokens.CLICK)
    paths = [
        f"/t/c/{token}/2",  # no such position in this send (it exists in the other send)
        f"/t/c/{token}/1",  # recorded, but not a web address
        f"/t/c/{token}/-1",
        f"/t/c/{token}/https:%2F%2Fevil.example",
        f"/t/c/{token}/0?url=https://evil.example",
        f"/t/c/{m.url(tokens.OPEN)}/0",
        f"/t/c/{token[:-2]}zz/0",
    ]
    for path in paths:
        r = client.get(path, follow_redirects=False)
        if path.endswith("?url=https://evil.example"):
            assert r.status_code == 302 and r.headers["location"] == "https://example.com/a"
        else:
            assert r.status_code == 404, path
            assert "location" not in r.headers
    assert len(m.events("click")) == 1 and other.events() == []


def test_other_accounts_branding_does_not_leak(client: TestClient, container: Container, account_id: int) -> None:
    plain = make_account_row(container, "plain co")
    m: Mailed = mail(container, plain)
    r = client.get(f"/u/{m.url(tokens.UNSUBSCRIBE)}")
    assert "plain co" in r.text and "Acme" not in r.text
