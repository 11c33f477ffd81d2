"""on_unconfirmed / request_optin: which rule fires, the record, the rate limit and refused addresses."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from herald.errors import NotAllowed, RateLimited
from herald.jobs.models import Job
from herald.lists.service import ListService
from herald.optin.service import OptinRuleService
from herald.optin.trigger import OPTIN_JOB, request_optin
from tests.optin.factories import admin, make_list, make_message, records


def _subscribe(container: Container, creds: dict[str, Any], list_id: int, email: str) -> int:
    with container.transaction() as s:
        return (
            ListService(s, admin(creds), hash_key=container.hash_key).subscribe(list_id, email, status="unconfirmed").id
        )


def _again(container: Container, creds: dict[str, Any], sub_id: int) -> None:
    with container.transaction() as s:
        svc = ListService(s, admin(creds))
        request_optin(s, admin(creds), svc.get_subscription(sub_id))


def _rule(container: Container, creds: dict[str, Any], **kw: Any) -> int:
    with container.transaction() as s:
        return OptinRuleService(s, admin(creds)).create(**kw).id


def _jobs(container: Container) -> list[Job]:
    with container.transaction() as s:
        return list(s.scalars(select(Job).where(Job.kind == OPTIN_JOB)))


def test_unconfirmed_subscription_queues_email_and_marks_pending(container: Container, account: dict[str, Any]) -> None:
    lid = make_list(container, account["account_id"])
    sub_id = _subscribe(container, account, lid, "Ann@Example.com")
    [rec] = records(container, sub_id)
    assert (rec.completed, rec.confirmed, rec.error, rec.errortype, rec.rule_id) == (False, False, False, None, None)
    assert [j.payload for j in _jobs(container)] == [{"record_id": rec.id}]
    with container.transaction() as s:
        assert ConsentService(s, admin(account)).get("ann@example.com").status == "pending"


def test_list_rule_beats_catch_all_and_paused_rules_do_not_fire(container: Container, account: dict[str, Any]) -> None:
    aid = account["account_id"]
    lid, other = make_list(container, aid), make_list(container, aid, "Other")
    m_list, m_all = make_message(container, aid, "List msg"), make_message(container, aid, "All msg")
    r_list = _rule(container, account, list_id=lid, message_id=m_list, name="list")
    r_all = _rule(container, account, list_id=None, message_id=m_all, name="all")
    [rec] = records(container, _subscribe(container, account, lid, "a@example.com"))
    assert (rec.rule_id, rec.message_id) == (r_list, m_list)
    [rec] = records(container, _subscribe(container, account, other, "b@example.com"))
    assert (rec.rule_id, rec.message_id) == (r_all, m_all)
    with container.transaction() as s:
        OptinRuleService(s, admin(account)).update(r_list, {"paused": True})
    [rec] = records(container, _subscribe(container, account, lid, "c@example.com"))
    assert rec.rule_id == r_all
    with container.transaction() as s:
        OptinRuleService(s, admin(account)).update(r_all, {"paused": True})
    [rec] = records(container, _subscribe(container, account, lid, "d@example.com"))
    assert (rec.rule_id, rec.message_id) == (None, None)  # the built-in confirmation


def test_at_most_ten_per_subscription_per_day(container: Container, account: dict[str, Any]) -> None:
    lid = make_list(container, account["account_id"])
    sub_id = _subscribe(container, account, lid, "a@example.com")
    for _ in range(9):
        _again(container, account, sub_id)
    assert len(records(container, sub_id)) == 10
    with pytest.raises(RateLimited) as err:
        _again(container, account, sub_id)
    assert err.value.retry_after and err.value.retry_after > 23 * 3600
    assert len(records(container, sub_id)) == 10
    assert len(_jobs(container)) == 10
    # Another subscription is not limited by the first one's count.
    _subscribe(container, account, make_list(container, account["account_id"], "B"), "a@example.com")
    assert len(_jobs(container)) == 11


def test_spam_reported_or_bounced_address_is_never_mailed(container: Container, account: dict[str, Any]) -> None:
    lid = make_list(container, account["account_id"])
    subs = {e: _subscribe(container, account, lid, e) for e in ("spam@example.com", "bounce@example.com")}
    before = len(_jobs(container))
    with container.transaction() as s:
        consent = ConsentService(s, Actor(account_id=account["account_id"], source="test"))
        consent.set_status("spam@example.com", "spam_reported")
        consent.set_status("bounce@example.com", "bounced")
    for email, errortype in (("spam@example.com", "Blacklisted"), ("bounce@example.com", "Hard bounce")):
        _again(container, account, subs[email])
        rec = records(container, subs[email])[-1]
        assert (rec.completed, rec.error, rec.errortype) == (True, True, errortype)
    assert len(_jobs(container)) == before


def test_active_subscription_is_not_asked_again(container: Container, account: dict[str, Any]) -> None:
    lid = make_list(container, account["account_id"])
    with container.transaction() as s:
        sub_id = ListService(s, admin(account)).subscribe(lid, "a@example.com", status="active").id
    with pytest.raises(NotAllowed):
        _again(container, account, sub_id)
    assert records(container, sub_id) == [] and _jobs(container) == []
