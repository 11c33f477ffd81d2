"""Retention: unconfirmed subscriptions past the setting are purged, and addresses left with nothing erased."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from herald.actor import Actor
from herald.consent import retention
from herald.consent.models import ConsentEvent
from herald.consent.privacy import purge_unconfirmed
from herald.consent.service import ConsentService
from herald.contacts.models import Contact
from herald.container import Container
from herald.db.base import utcnow
from herald.lists.models import MailingList, Subscription
from herald.optin.models import OptinRecord
from herald.worker import Worker
from tests.consent.privacy_factory import address_status, scan


def _subscribe(
    container: Container,
    account_id: int,
    email: str,
    *,
    age_days: float,
    status: str = "unconfirmed",
    address_status: str | None = "pending",
    contact: bool = False,
) -> int:
    with container.transaction() as s:
        consent = ConsentService(s, Actor(account_id=account_id, source="api", ip="192.0.2.9"))
        addr = consent.ensure(email)
        if address_status:
            consent.transition(addr, address_status, reason="signed up")
        lst = MailingList(account_id=account_id, name=f"List {email.split('@')[0]}", double_opt_in=True)
        s.add(lst)
        if contact:
            s.add(Contact(account_id=account_id, email=email, first_name="Keep"))
        s.flush()
        created = utcnow() - timedelta(days=age_days)
        sub = Subscription(account_id=account_id, list_id=lst.id, address_id=addr.id, status=status, created_at=created)
        s.add(sub)
        s.flush()
        consent.record_subscription(addr, lst.id, None, status, reason=f"form by {email}")
        s.add(OptinRecord(account_id=account_id, subscription_id=sub.id, detail=f"sent to {email}"))
        return sub.id


def _purge(container: Container, days: int = 60) -> int:
    with container.transaction() as s:
        return purge_unconfirmed(s, hash_key=container.hash_key, days=days)


def _subscriptions(container: Container) -> list[int]:
    with container.transaction() as s:
        return list(s.scalars(select(Subscription.id).order_by(Subscription.id)))


def test_old_unconfirmed_subscription_is_purged_and_its_lone_address_erased(
    container: Container, account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    _subscribe(container, aid, "stale@example.com", age_days=61)
    assert _purge(container) == 1
    assert _subscriptions(container) == []
    assert address_status(container, aid, "stale@example.com") is None
    assert scan(container, ["stale@example.com", "192.0.2.9"]) == []
    with container.transaction() as s:
        events = s.scalars(select(ConsentEvent).where(ConsentEvent.account_id == aid).order_by(ConsentEvent.id)).all()
        skeleton = [(e.kind, e.from_status, e.to_status, e.source) for e in events]
        assert skeleton[-2:] == [("purge", "unconfirmed", None, "system"), ("erasure", "pending", None, "system")]
        assert events[-2].list_id is not None
        assert all(e.ip is None and e.user_agent is None and e.address_id is None for e in events)
    assert _purge(container) == 0


def test_what_is_kept(container: Container, account: dict[str, Any], other_account: dict[str, Any]) -> None:
    aid = account["account_id"]
    young = _subscribe(container, aid, "young@example.com", age_days=59)
    active = _subscribe(container, aid, "active@example.com", age_days=400, status="active", address_status=None)
    _subscribe(container, aid, "contact@example.com", age_days=61, contact=True)
    _subscribe(container, aid, "optedout@example.com", age_days=61, address_status="opted_out")
    _subscribe(container, other_account["account_id"], "other@example.com", age_days=90, address_status=None)
    # An address with a second, active subscription keeps it (and itself).
    with container.transaction() as s:
        addr = ConsentService(s, Actor(account_id=aid, source="api")).get("young@example.com")
        lst = MailingList(account_id=aid, name="Old", double_opt_in=True)
        s.add(lst)
        s.flush()
        s.add(
            Subscription(
                account_id=aid,
                list_id=lst.id,
                address_id=addr.id,
                status="unconfirmed",
                created_at=utcnow() - timedelta(days=70),
            )
        )
    assert _purge(container) == 4
    assert _subscriptions(container) == [young, active]
    assert address_status(container, aid, "young@example.com") == "pending"
    assert address_status(container, aid, "contact@example.com") == "pending"
    assert address_status(container, aid, "optedout@example.com") == "opted_out"
    assert address_status(container, other_account["account_id"], "other@example.com") is None
    with container.transaction() as s:
        assert s.scalar(select(Contact.first_name).where(Contact.email == "contact@example.com")) == "Keep"
        assert [r.subscription_id for r in s.scalars(select(OptinRecord).order_by(OptinRecord.id))] == [young, active]


def test_the_setting_decides_the_age(container: Container, account: dict[str, Any]) -> None:
    _subscribe(container, account["account_id"], "ten@example.com", age_days=11)
    assert _purge(container, days=60) == 0
    assert _purge(container, days=10) == 1


def test_worker_step_runs_at_most_every_interval(container: Container, account: dict[str, Any]) -> None:
    settings = container.settings.model_copy(update={"unconfirmed_retention_days": 30})
    worker = Worker(Container.build(settings))
    try:
        _subscribe(container, account["account_id"], "first@example.com", age_days=31)
        assert asyncio.run(retention.retention_step(worker)) is True
        _subscribe(container, account["account_id"], "second@example.com", age_days=31)
        assert asyncio.run(retention.retention_step(worker)) is False  # too soon: waits for the interval
        assert len(_subscriptions(container)) == 1
        retention._last_run[worker] -= retention.INTERVAL_SECONDS
        assert asyncio.run(retention.retention_step(worker)) is True
        assert _subscriptions(container) == []
        assert asyncio.run(retention.retention_step(worker)) is False
    finally:
        worker.container.engine.dispose()
    from herald.worker import _STEPS

    assert "privacy.retention" in [name for name, _ in _STEPS]
