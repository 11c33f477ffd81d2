"""The consent state machine, temporary opt-outs, topics and the ledger, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from herald.actor import Actor
from herald.consent import rules
from herald.consent.models import ConsentEvent, Topic
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from herald.errors import Invalid, NotAllowed, NotFound


def svc(session: Any, account: dict[str, Any], source: str = "api") -> ConsentService:
    return ConsentService(session, Actor(account_id=account["account_id"], source=source, ip="10.0.0.1"))


ALL_TARGETS = [rules.OPTED_IN, rules.OPTED_OUT, rules.BOUNCED, rules.SPAM_REPORTED, rules.PENDING]


def _put_in(container: Container, account: dict[str, Any], email: str, state: str) -> None:
    """Bring an address into `state` through allowed transitions only."""
    with container.transaction() as s:
        c = svc(s, account)
        c.ensure(email)
        if state != rules.UNKNOWN:
            c.set_status(email, state)


@pytest.mark.parametrize("start", rules.STATUSES)
@pytest.mark.parametrize("target", ALL_TARGETS)
def test_every_transition_is_allowed_or_refused_with_current_status(
    container: Container, account: dict[str, Any], start: str, target: str
) -> None:
    email = "person@example.com"
    _put_in(container, account, email, start)
    with container.transaction() as s:
        c = svc(s, account)
        if rules.is_allowed(start, target):
            assert c.set_status(email, target).status == target
        else:
            with pytest.raises(NotAllowed) as err:
                c.set_status(email, target)
            assert err.value.current_status == start
    with container.transaction() as s:
        addr = svc(s, account).get(email)
        assert addr.status == (target if rules.is_allowed(start, target) else start)


def test_allclients_rules_written_out(container: Container, account: dict[str, Any]) -> None:
    """Spot checks that read like the seed: no opt-in over an opt-out; spam report is final."""
    assert rules.is_allowed(rules.UNKNOWN, rules.OPTED_IN)
    assert not rules.is_allowed(rules.OPTED_OUT, rules.OPTED_IN)
    assert not rules.is_allowed(rules.BOUNCED, rules.OPTED_IN)
    assert rules.is_allowed(rules.OPTED_IN, rules.OPTED_OUT)
    assert rules.is_allowed(rules.OPTED_IN, rules.BOUNCED)
    assert not rules.is_allowed(rules.OPTED_OUT, rules.BOUNCED)
    for state in rules.STATUSES:
        assert rules.is_allowed(state, rules.SPAM_REPORTED)
        assert not rules.is_allowed(rules.SPAM_REPORTED, state) or state == rules.SPAM_REPORTED


def test_unknown_address_is_not_found_unless_created(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        with pytest.raises(NotFound):
            svc(s, account).set_status("nobody@example.com", rules.OPTED_OUT)
        addr = svc(s, account).set_status(" Nobody@Example.com ", rules.OPTED_OUT, create=True)
        assert addr.email == "nobody@example.com"


def test_ledger_written_for_every_change_with_who_and_from_to(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        c = svc(s, account, source="mailkit")
        c.ensure("a@example.com")
        c.set_status("a@example.com", rules.OPTED_IN, reason="signed up")
        c.set_status("a@example.com", rules.OPTED_OUT)
        with pytest.raises(NotAllowed):
            c.set_status("a@example.com", rules.OPTED_IN)
    with container.transaction() as s:
        c = svc(s, account)
        events = c.events(c.get("a@example.com"))
        assert [(e.from_status, e.to_status) for e in events] == [
            (rules.UNKNOWN, rules.OPTED_IN),
            (rules.OPTED_IN, rules.OPTED_OUT),
        ]
        assert events[0].source == "mailkit" and events[0].ip == "10.0.0.1" and events[0].reason == "signed up"


def test_temporary_optout_expires_and_returns_to_previous_state(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        c = svc(s, account)
        c.ensure("t@example.com")
        c.set_status("t@example.com", rules.OPTED_IN)
        addr = c.set_status("t@example.com", rules.OPTED_OUT, until=utcnow() + timedelta(days=14))
        assert addr.status_before_optout == rules.OPTED_IN
        # Move the date into the past, as if 14 days went by.
        addr.opted_out_until = utcnow() - timedelta(seconds=1)
    with container.transaction() as s:
        assert ConsentService(s, Actor(account_id=0, source="system")).expire_temporary_optouts() == 1
    with container.transaction() as s:
        c = svc(s, account)
        addr = c.get("t@example.com")
        assert addr.status == rules.OPTED_IN and addr.opted_out_until is None
        last = c.events(addr)[-1]
        assert (last.from_status, last.to_status, last.source) == (rules.OPTED_OUT, rules.OPTED_IN, "system")
        assert last.account_id == account["account_id"]


def test_temporary_optout_must_be_future_and_only_for_optout(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        c = svc(s, account)
        c.ensure("x@example.com")
        with pytest.raises(Invalid) as err:
            c.set_status("x@example.com", rules.OPTED_OUT, until=utcnow() - timedelta(days=1))
        assert err.value.field == "until"
        with pytest.raises(Invalid):
            c.set_status("x@example.com", rules.BOUNCED, until=utcnow() + timedelta(days=1))


def test_topic_unsubscribe_and_resubscribe(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        topic = Topic(account_id=account["account_id"], name="Blog", description="Tips")
        s.add(topic)
        s.flush()
        c = svc(s, account)
        addr = c.ensure("t@example.com")
        assert c.unsubscribe_topic(addr, topic.id) is True
        assert c.unsubscribe_topic(addr, topic.id) is False
        assert [t.unsubscribed for t in c.topic_states(addr)] == [True]
        assert addr.status == rules.UNKNOWN  # global status untouched
        assert c.resubscribe_topic(addr, topic.id) is True
        kinds = [(e.kind, e.topic_id, e.to_status) for e in c.events(addr)]
        assert kinds == [("topic", topic.id, "unsubscribed"), ("topic", topic.id, "subscribed")]


def test_topic_of_another_account_is_not_found(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    with container.transaction() as s:
        topic = Topic(account_id=other_account["account_id"], name="Theirs")
        s.add(topic)
        s.flush()
        c = svc(s, account)
        with pytest.raises(NotFound):
            c.unsubscribe_topic(c.ensure("a@example.com"), topic.id)


def test_ledger_is_append_only(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        c = svc(s, account)
        c.ensure("l@example.com")
        c.set_status("l@example.com", rules.OPTED_IN)
        first = [(e.id, e.at, e.to_status) for e in c.events(c.get("l@example.com"))]
        c.set_status("l@example.com", rules.SPAM_REPORTED)
    with container.transaction() as s:
        c = svc(s, account)
        events = c.events(c.get("l@example.com"))
        assert [(e.id, e.at, e.to_status) for e in events[: len(first)]] == first
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 2
