"""Applying bounces, complaints and mailto unsubscribes to deliveries and consent."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from herald.inbound.models import InboundMessage
from herald.inbound.service import InboundService
from herald.jobs.models import Job
from herald.sends.models import Delivery
from herald.webhooks.models import Webhook
from tests.inbound import samples
from tests.public.factories import Mailed, mail, make_account_row, make_topic


@pytest.fixture
def account_id(container: Container) -> int:
    return make_account_row(container)


def _receive(container: Container, raw: bytes, rcpts: tuple[str, ...] = ()) -> InboundMessage:
    with container.transaction() as s:
        msg = InboundService(s, container.signer, hash_key=container.hash_key).receive(raw, envelope_recipients=rcpts)
        s.flush()
        s.expunge(msg)
        return msg


def _mid(m: Mailed) -> str:
    return f"<{m.token}@herald.test>"


def _delivery(container: Container, m: Mailed) -> Delivery:
    with container.transaction() as s:
        d = s.get(Delivery, m.delivery_id)
        assert d is not None
        s.expunge(d)
        return d


def test_hard_bounce_by_message_id(container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    other = mail(container, account_id, "bob@example.com")
    msg = _receive(container, samples.hard_bounce(_mid(m), m.email))
    assert (msg.kind, msg.outcome, msg.delivery_id, msg.account_id) == ("dsn", "hard_bounce", m.delivery_id, account_id)
    assert m.status() == "bounced"
    last = m.ledger()[-1]
    assert (last.source, last.from_status, last.to_status, last.send_id) == (
        "inbound",
        "opted_in",
        "bounced",
        m.send_id,
    )
    assert last.reason and "5.1.1" in last.reason
    d = _delivery(container, m)
    assert d.status == "bounced" and d.error and "5.1.1" in d.error
    assert [e.kind for e in m.events()] == ["bounce"]
    assert other.status() == "opted_in" and other.events() == []


def test_replayed_bounce_changes_nothing_twice(container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    raw = samples.hard_bounce(_mid(m), m.email)
    _receive(container, raw)
    ledger = len(m.ledger())
    second = _receive(container, raw)
    assert second.outcome == "hard_bounce"
    assert len(m.ledger()) == ledger and len(m.events("bounce")) == 1


def test_stored_message_id_and_delivery_header_match(container: Container, account_id: int) -> None:
    by_column = mail(container, account_id, message_id="<custom-id-1@relay.example>")
    by_header = mail(container, account_id, "bob@example.com")
    assert _receive(container, samples.hard_bounce("<custom-id-1@relay.example>", "x@example.com")).delivery_id == (
        by_column.delivery_id
    )
    raw = samples.hard_bounce("<unrelated@elsewhere>", "x@example.com", delivery_header=by_header.token)
    assert _receive(container, raw).delivery_id == by_header.delivery_id
    assert by_header.status() == "bounced"


def test_fallback_to_most_recent_delivery_to_recipient(container: Container, account_id: int) -> None:
    older = mail(container, account_id)
    newer = mail(container, account_id)  # a second send to the same address
    msg = _receive(container, samples.hard_bounce("<not-ours@elsewhere>", "ANN@example.com"))
    assert msg.delivery_id == newer.delivery_id and msg.delivery_id != older.delivery_id
    assert newer.status() == "bounced"


def test_soft_bounce_is_recorded_without_state_change(container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    ledger = len(m.ledger())
    msg = _receive(container, samples.soft_bounce(_mid(m), m.email))
    assert msg.outcome == "soft_bounce" and msg.delivery_id == m.delivery_id
    assert m.status() == "opted_in" and len(m.ledger()) == ledger
    assert _delivery(container, m).status == "sent"
    events = m.events()
    assert [e.kind for e in events] == ["soft_bounce"] and "4.2.2" in (events[0].detail or "")


def test_complaint_marks_spam_reported_and_emits_webhook(container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    with container.transaction() as s:
        s.add(Webhook(account_id=account_id, url="http://127.0.0.1:9/h", events=["complaint"], format="native"))
    msg = _receive(container, samples.complaint(_mid(m), m.email))
    assert (msg.kind, msg.outcome) == ("arf", "complaint")
    assert m.status() == "spam_reported"
    assert m.ledger()[-1].source == "inbound"
    assert [e.kind for e in m.events()] == ["complaint"]
    _receive(container, samples.complaint(_mid(m), m.email))
    assert len(m.events("complaint")) == 1
    with container.transaction() as s:
        assert [j.payload["event"] for j in s.scalars(select(Job))] == ["complaint"]


def test_complaint_overrides_an_opt_out_but_a_bounce_does_not(container: Container, account_id: int) -> None:
    out1 = mail(container, account_id, status="opted_out")
    out2 = mail(container, account_id, "bob@example.com", status="opted_out")
    _receive(container, samples.hard_bounce(_mid(out1), out1.email))
    assert out1.status() == "opted_out" and [e.kind for e in out1.events()] == ["bounce"]
    _receive(container, samples.complaint(_mid(out2), out2.email))
    assert out2.status() == "spam_reported"


def test_unmatched_and_unknown_messages_are_stored(container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    unmatched = _receive(container, samples.hard_bounce("<nobody@nowhere>", "stranger@example.org"))
    assert (unmatched.outcome, unmatched.delivery_id, unmatched.account_id) == ("unmatched", None, None)
    ignored = _receive(container, b"Subject: out of office\r\n\r\nI am away.\r\n")
    assert (ignored.kind, ignored.outcome) == ("unknown", "ignored")
    delivered = _receive(container, samples.success_notice(_mid(m), m.email))
    assert delivered.outcome == "ignored"
    assert m.status() == "opted_in" and m.events() == []
    with container.transaction() as s:
        rows = s.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert [r.outcome for r in rows] == ["unmatched", "ignored", "ignored"]
        assert rows[0].raw and "Undelivered Mail" in rows[0].raw


def test_bounce_for_erased_address_marks_delivery_only(container: Container, account_id: int) -> None:
    m = mail(container, account_id)
    with container.transaction() as s:
        d = s.get(Delivery, m.delivery_id)
        assert d is not None
        d.address_id = None
    msg = _receive(container, samples.hard_bounce(_mid(m), m.email))
    assert msg.outcome == "hard_bounce" and _delivery(container, m).status == "bounced"


def test_mailto_unsubscribe_by_envelope_recipient(container: Container, account_id: int) -> None:
    topic = make_topic(container, account_id, "News")
    m = mail(container, account_id, topic_id=topic)
    raw = b"From: ann@example.com\r\nSubject: unsubscribe\r\n\r\n"
    msg = _receive(container, raw, (f"unsubscribe+{m.token}@herald.test",))
    assert (msg.kind, msg.outcome, msg.delivery_id) == ("mailto", "unsubscribe", m.delivery_id)
    assert m.unsubscribed_topics() == {topic}
    assert [(e.kind, e.source) for e in m.ledger() if e.kind == "topic"] == [("topic", "inbound")]
    bad = _receive(container, raw, ("unsubscribe+0000@herald.test",))
    assert bad.outcome == "unmatched"
    with container.transaction() as s:
        assert ConsentService(s, Actor(account_id, "test")).get(m.email).status == "opted_in"
