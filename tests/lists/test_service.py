"""ListService: subscribe / unsubscribe rules, the ledger and the webhook outbox, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from herald.actor import Actor
from herald.consent import rules
from herald.consent.models import Address, ConsentEvent, Suppression
from herald.consent.service import ConsentService, email_hash
from herald.container import Container
from herald.db.base import utcnow
from herald.errors import Invalid, NotAllowed, NotFound
from herald.jobs.models import Job
from herald.lists.models import Subscription
from herald.lists.service import ListService
from herald.optin import trigger
from herald.webhooks.models import Webhook
from herald.webhooks.outbox import WEBHOOK_JOB


def actor(account: dict[str, Any]) -> Actor:
    return Actor(account_id=account["account_id"], source="api", ip="10.0.0.2")


def svc(session: Any, account: dict[str, Any], container: Container) -> ListService:
    return ListService(session, actor(account), hash_key=container.hash_key)


def new_list(container: Container, account: dict[str, Any], *, double_opt_in: bool = False) -> int:
    with container.transaction() as s:
        return svc(s, account, container).create_list("News", double_opt_in=double_opt_in).id


def hook(container: Container, account: dict[str, Any], *events: str) -> int:
    with container.transaction() as s:
        row = Webhook(account_id=account["account_id"], url="http://127.0.0.1:9/h", events=list(events))
        s.add(row)
        s.flush()
        return row.id


def jobs(container: Container) -> list[dict[str, Any]]:
    with container.transaction() as s:
        return [j.payload for j in s.scalars(select(Job).where(Job.kind == WEBHOOK_JOB).order_by(Job.id))]


def ledger(container: Container, account: dict[str, Any], email: str) -> list[tuple[Any, ...]]:
    with container.transaction() as s:
        addr = ConsentService(s, actor(account)).get(email)
        return [
            (e.kind, e.from_status, e.to_status, e.list_id, e.source)
            for e in s.scalars(select(ConsentEvent).where(ConsentEvent.address_id == addr.id).order_by(ConsentEvent.id))
        ]


def put_in(container: Container, account: dict[str, Any], email: str, status: str, **kw: Any) -> None:
    with container.transaction() as s:
        ConsentService(s, actor(account)).set_status(email, status, create=True, **kw)


def test_active_subscription_is_active_and_leaves_global_status(container: Container, account: dict[str, Any]) -> None:
    lid = new_list(container, account)
    hook(container, account, "list.subscribed")
    with container.transaction() as s:
        sub = svc(s, account, container).subscribe(lid, "  Ann@Example.COM ", status="active", reason="form")
        assert sub.status == "active"
    with container.transaction() as s:
        addr = ConsentService(s, actor(account)).get("ann@example.com")
        assert addr.status == rules.UNKNOWN
    assert ledger(container, account, "ann@example.com") == [("subscription", None, "active", lid, "api")]
    assert jobs(container) == [
        {
            "webhook_id": jobs_hook_id(container),
            "event": "list.subscribed",
            "at": jobs(container)[0]["at"],
            "data": {"email": "ann@example.com", "list_id": lid, "list": "News", "status": "active"},
        }
    ]


def jobs_hook_id(container: Container) -> int:
    with container.transaction() as s:
        return int(s.scalars(select(Webhook.id)).one())


def test_opted_in_address_stays_opted_in(container: Container, account: dict[str, Any]) -> None:
    lid = new_list(container, account)
    put_in(container, account, "in@example.com", rules.OPTED_IN)
    with container.transaction() as s:
        svc(s, account, container).subscribe(lid, "in@example.com")
    with container.transaction() as s:
        assert ConsentService(s, actor(account)).get("in@example.com").status == rules.OPTED_IN


@pytest.mark.parametrize("status", [rules.OPTED_OUT, rules.BOUNCED, rules.SPAM_REPORTED])
def test_suppressed_addresses_are_refused_and_nothing_changes(
    container: Container, account: dict[str, Any], status: str
) -> None:
    lid = new_list(container, account)
    hook(container, account, "list.subscribed", "list.unsubscribed")
    put_in(container, account, "s@example.com", status)
    before = ledger(container, account, "s@example.com")
    with container.transaction() as s:
        with pytest.raises(NotAllowed) as err:
            svc(s, account, container).subscribe(lid, "s@example.com", status="active")
        assert err.value.current_status == status
        with pytest.raises(NotAllowed):
            svc(s, account, container).subscribe(lid, "s@example.com", status="unconfirmed")
    with container.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Subscription)) == 0
        assert ConsentService(s, actor(account)).get("s@example.com").status == status
    assert ledger(container, account, "s@example.com") == before
    assert jobs(container) == []


def test_temporary_optout_refuses_until_it_ends(container: Container, account: dict[str, Any]) -> None:
    lid = new_list(container, account)
    put_in(container, account, "t@example.com", rules.OPTED_OUT, until=utcnow() + timedelta(days=3))
    with container.transaction() as s, pytest.raises(NotAllowed):
        svc(s, account, container).subscribe(lid, "t@example.com")
    with container.transaction() as s:
        addr = ConsentService(s, actor(account)).get("t@example.com")
        addr.opted_out_until = utcnow() - timedelta(seconds=1)
    with container.transaction() as s:
        assert svc(s, account, container).subscribe(lid, "t@example.com").status == "active"


def test_erased_suppressed_address_is_refused_without_creating_a_row(
    container: Container, account: dict[str, Any]
) -> None:
    lid = new_list(container, account)
    with container.transaction() as s:
        s.add(
            Suppression(
                account_id=account["account_id"],
                email_hash=email_hash(container.hash_key, "gone@example.com"),
                status=rules.SPAM_REPORTED,
            )
        )
    with container.transaction() as s:
        with pytest.raises(NotAllowed) as err:
            svc(s, account, container).subscribe(lid, "gone@example.com")
        assert err.value.current_status == rules.SPAM_REPORTED
        assert s.scalar(select(func.count()).select_from(Address)) == 0


def test_unconfirmed_calls_the_optin_hook_then_confirms(
    container: Container, account: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    lid = new_list(container, account, double_opt_in=True)
    hook(container, account, "list.subscribed")
    seen: list[tuple[int, str]] = []
    monkeypatch.setattr(trigger, "on_unconfirmed", lambda _s, _a, sub: seen.append((sub.list_id, sub.status)))
    with container.transaction() as s:
        sub = svc(s, account, container).subscribe(lid, "u@example.com", status="unconfirmed")
        sub_id = sub.id
    assert seen == [(lid, "unconfirmed")]
    assert jobs(container) == []
    with container.transaction() as s:
        service = svc(s, account, container)
        # Asking again changes nothing and sends no second opt-in email.
        assert service.subscribe(lid, "u@example.com", status="unconfirmed").status == "unconfirmed"
        assert service.confirm(service.get_subscription(sub_id)).status == "active"
        # An active subscription is never demoted by a repeated sign-up.
        assert service.subscribe(lid, "u@example.com", status="unconfirmed").status == "active"
    assert seen == [(lid, "unconfirmed")]
    assert [p["event"] for p in jobs(container)] == ["list.subscribed"]
    assert ledger(container, account, "u@example.com") == [
        ("subscription", None, "unconfirmed", lid, "api"),
        ("subscription", "unconfirmed", "active", lid, "api"),
    ]


def test_unsubscribe_writes_ledger_and_event_and_resubscribe_works(
    container: Container, account: dict[str, Any]
) -> None:
    lid = new_list(container, account)
    hook(container, account, "list.unsubscribed")
    with container.transaction() as s:
        svc(s, account, container).subscribe(lid, "a@example.com")
    with container.transaction() as s:
        assert svc(s, account, container).unsubscribe(lid, "A@example.com", reason="asked").status == "unsubscribed"
    with container.transaction() as s:
        # Again: a no-op without a second ledger entry or event.
        assert svc(s, account, container).unsubscribe(lid, "a@example.com").status == "unsubscribed"
    payloads = jobs(container)
    assert [(p["event"], p["data"]["status"], p["data"]["email"]) for p in payloads] == [
        ("list.unsubscribed", "unsubscribed", "a@example.com")
    ]
    with container.transaction() as s:
        assert svc(s, account, container).subscribe(lid, "a@example.com").status == "active"
    assert [e[1:3] for e in ledger(container, account, "a@example.com")] == [
        (None, "active"),
        ("active", "unsubscribed"),
        ("unsubscribed", "active"),
    ]


def test_unsubscribe_unknown_address_or_subscription_is_not_found(
    container: Container, account: dict[str, Any]
) -> None:
    lid = new_list(container, account)
    put_in(container, account, "known@example.com", rules.OPTED_IN)
    with container.transaction() as s:
        service = svc(s, account, container)
        with pytest.raises(NotFound) as err:
            service.unsubscribe(lid, "never@example.com")
        assert err.value.what == "address"
        with pytest.raises(NotFound) as err:
            service.unsubscribe(lid, "known@example.com")
        assert err.value.what == "subscription"
        with pytest.raises(NotFound):
            service.unsubscribe(lid + 100, "known@example.com")
        assert s.scalar(select(func.count()).select_from(Address)) == 1


def test_unsubscribe_all(container: Container, account: dict[str, Any]) -> None:
    lid = new_list(container, account)
    other = new_list(container, account)
    hook(container, account, "list.unsubscribed")
    with container.transaction() as s:
        service = svc(s, account, container)
        for i in range(3):
            service.subscribe(lid, f"p{i}@example.com", status="active" if i else "unconfirmed")
        service.subscribe(other, "p0@example.com")
        service.unsubscribe(lid, "p2@example.com")
    before = len(jobs(container))
    with container.transaction() as s:
        assert svc(s, account, container).unsubscribe_all(lid, reason="ALL") == 2
    with container.transaction() as s:
        rows = s.execute(select(Subscription.list_id, Subscription.status).order_by(Subscription.id)).all()
        assert [tuple(r) for r in rows] == [
            (lid, "unsubscribed"),
            (lid, "unsubscribed"),
            (lid, "unsubscribed"),
            (other, "active"),
        ]
    assert len(jobs(container)) == before + 2
    assert ledger(container, account, "p0@example.com")[-1] == (
        "subscription",
        "unconfirmed",
        "unsubscribed",
        lid,
        "api",
    )
    with container.transaction() as s:
        assert svc(s, account, container).unsubscribe_all(lid) == 0


def test_lists_are_tenant_isolated(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    lid = new_list(container, account)
    with container.transaction() as s:
        service = svc(s, other_account, container)
        with pytest.raises(NotFound):
            service.get_list(lid)
        with pytest.raises(NotFound):
            service.subscribe(lid, "x@example.com")
        with pytest.raises(NotFound):
            service.unsubscribe_all(lid)
        assert s.scalar(select(func.count()).select_from(Address)) == 0


def test_deleted_list_is_not_found(container: Container, account: dict[str, Any]) -> None:
    lid = new_list(container, account)
    with container.transaction() as s:
        svc(s, account, container).get_list(lid).deleted_at = utcnow()
    with container.transaction() as s, pytest.raises(NotFound):
        svc(s, account, container).get_list(lid)


def test_bad_input(container: Container, account: dict[str, Any], other_account: dict[str, Any]) -> None:
    lid = new_list(container, account)
    with container.transaction() as s:
        service = svc(s, account, container)
        with pytest.raises(Invalid) as err:
            service.subscribe(lid, "x@example.com", status="unsubscribed")
        assert err.value.field == "status"
        with pytest.raises(Invalid) as err:
            service.subscribe(lid, "not an email")
        assert err.value.field == "email"
        with pytest.raises(NotFound):
            service.subscribe(lid, "new@example.com", create_address=False)
        with pytest.raises(Invalid) as err:
            service.create_list("  ")
        assert err.value.field == "name"
        foreign = svc(s, other_account, container).create_category("Theirs").id
        with pytest.raises(Invalid) as err:
            service.create_list("L", category_id=foreign)
        assert err.value.field == "category_id"
        assert s.scalar(select(func.count()).select_from(Address)) == 0


def test_subscriptions_page(container: Container, account: dict[str, Any]) -> None:
    lid = new_list(container, account)
    with container.transaction() as s:
        service = svc(s, account, container)
        for i in range(3):
            service.subscribe(lid, f"p{i}@example.com", status="unconfirmed" if i == 1 else "active")
    with container.transaction() as s:
        service = svc(s, account, container)
        assert [e for _, e in service.subscriptions(lid)] == ["p0@example.com", "p1@example.com", "p2@example.com"]
        assert [e for _, e in service.subscriptions(lid, status="unconfirmed")] == ["p1@example.com"]
        first = service.subscriptions(lid, limit=2)
        assert [e for _, e in service.subscriptions(lid, after_id=first[-1][0].id)] == ["p2@example.com"]
        assert service.find_subscription(lid, "P1@example.com") is not None
        assert service.find_subscription(lid, "zz@example.com") is None
