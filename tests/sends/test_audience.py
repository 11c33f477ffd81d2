"""Audience materialisation: exactly the eligible contacts queued, the rest suppressed and counted by reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from herald.accounts.models import Account
from herald.consent.models import Address
from herald.container import Container
from herald.lists.models import MailingList, Subscription
from herald.sends.models import Delivery
from herald.sends.service import SendService
from tests.sends.factory import World, actor, add_contact, send_in, unsubscribe_topic, world


@pytest.fixture
def w(container: Container, account: dict[str, Any]) -> World:
    with container.transaction() as s:
        return world(s, account["account_id"])


def _deliveries(s: Any, send_id: int) -> dict[str, tuple[str, str | None]]:
    rows = s.execute(select(Delivery.email, Delivery.status, Delivery.error).where(Delivery.send_id == send_id))
    return {email: (status, error) for email, status, error in rows}


def _launch(container: Container, w: World, **overrides: Any) -> int:
    with container.transaction() as s:
        svc = SendService(s, actor(w.account_id))
        send = svc.create(send_in(w, schedule_type=0, **overrides))
        svc.launch(send)
        return send.id


def test_eligible_queued_ineligible_suppressed_with_reason(container: Container, w: World) -> None:
    aid = w.account_id
    with container.transaction() as s:
        add_contact(s, aid, "ok@example.com", type_id=w.type_id)
        add_contact(s, aid, "in@example.com", type_id=w.type_id, status="opted_in")
        add_contact(s, aid, "out@example.com", type_id=w.type_id, status="opted_out")
        add_contact(s, aid, "bounce@example.com", type_id=w.type_id, status="bounced")
        add_contact(s, aid, "spam@example.com", type_id=w.type_id, status="spam_reported")
        add_contact(s, aid, "topic@example.com", type_id=w.type_id)
        unsubscribe_topic(s, aid, "topic@example.com", w.topic_id)
        add_contact(s, aid, "expired@example.com", type_id=w.type_id, status="opted_out")
        s.query(Address).filter_by(email="expired@example.com").one().opted_out_until = datetime.now(UTC) - timedelta(
            days=1
        )
        add_contact(s, aid, "paused@example.com", type_id=w.type_id, status="opted_out")
        s.query(Address).filter_by(email="paused@example.com").one().opted_out_until = datetime.now(UTC) + timedelta(
            days=9
        )
        add_contact(s, aid, "lead@example.com", type_id=w.other_type_id)
        add_contact(s, aid, "noaddress@example.com", type_id=w.type_id, address=False)
    send_id = _launch(container, w)
    with container.transaction() as s:
        got = _deliveries(s, send_id)
        assert got == {
            "ok@example.com": ("queued", None),
            "in@example.com": ("queued", None),
            "expired@example.com": ("queued", None),
            "out@example.com": ("suppressed", "opted_out"),
            "paused@example.com": ("suppressed", "opted_out"),
            "bounce@example.com": ("suppressed", "bounced"),
            "spam@example.com": ("suppressed", "spam_reported"),
            "topic@example.com": ("suppressed", "topic_unsubscribed"),
        }
        send = SendService(s, actor(w.account_id)).get(send_id)
        assert send.skipped == {"opted_out": 2, "bounced": 1, "spam_reported": 1, "topic_unsubscribed": 1}
        assert send.status == 2 and send.sent_at is not None
        tokens = [d.token for d in s.scalars(select(Delivery).where(Delivery.send_id == send_id))]
        assert len(set(tokens)) == len(tokens) and all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
        queued = s.scalars(select(Delivery).where(Delivery.send_id == send_id, Delivery.status == "queued")).all()
        assert all(d.contact_id and d.address_id and d.attempts == 0 for d in queued)


def test_two_targets_and_exclusions(container: Container, w: World) -> None:
    aid = w.account_id
    with container.transaction() as s:
        add_contact(s, aid, "both@example.com", type_id=w.type_id, country="DE")  # type AND segment
        add_contact(s, aid, "seg@example.com", type_id=w.other_type_id, country="DE")
        add_contact(s, aid, "type@example.com", type_id=w.type_id, country="FR")
        add_contact(s, aid, "none@example.com", type_id=None, country="FR")
    send_id = _launch(container, w, recipient_id=[f"contacts_{w.type_id}", f"segments_{w.segment_id}"])
    with container.transaction() as s:
        assert sorted(_deliveries(s, send_id)) == ["both@example.com", "seg@example.com", "type@example.com"]
    excluded = _launch(
        container,
        w,
        recipient_id=[f"contacts_{w.type_id}", f"segments_{w.segment_id}"],
        exclude_specific_recipient_id=[f"contacts_{w.other_type_id}", f"segments_{w.segment_id}"],
    )
    with container.transaction() as s:
        assert sorted(_deliveries(s, excluded)) == ["type@example.com"]


def test_require_optin_and_list_targeting(container: Container, w: World) -> None:
    aid = w.account_id
    with container.transaction() as s:
        s.get(Account, aid).require_optin = True  # type: ignore[union-attr]
        add_contact(s, aid, "unknown@example.com", type_id=w.type_id)
        add_contact(s, aid, "active@example.com", type_id=w.type_id)
        add_contact(s, aid, "in@example.com", type_id=w.type_id, status="opted_in")
        add_contact(s, aid, "pending@example.com", type_id=w.type_id, status="opted_in")
        lst = MailingList(account_id=aid, name="L", double_opt_in=True)
        s.add(lst)
        s.flush()
        for email, status in (
            ("in@example.com", "active"),
            ("active@example.com", "active"),
            ("pending@example.com", "unconfirmed"),
        ):
            addr = s.query(Address).filter_by(email=email).one()
            s.add(Subscription(account_id=aid, list_id=lst.id, address_id=addr.id, status=status))
        list_id = lst.id
    send_id = _launch(container, w, list_id=list_id)
    with container.transaction() as s:
        assert _deliveries(s, send_id) == {
            "in@example.com": ("queued", None),
            "pending@example.com": ("suppressed", "not_subscribed"),
            "unknown@example.com": ("suppressed", "not_subscribed"),
            "active@example.com": ("suppressed", "not_opted_in"),
        }


def test_empty_audience_completes_at_once(container: Container, w: World) -> None:
    with container.transaction() as s:
        add_contact(s, w.account_id, "out@example.com", type_id=w.type_id, status="opted_out")
    send_id = _launch(container, w)
    with container.transaction() as s:
        send = SendService(s, actor(w.account_id)).get(send_id)
        assert send.status == 3 and send.completed_at is not None
        assert send.skipped == {"opted_out": 1}


def test_other_accounts_contacts_never_reached(container: Container, w: World) -> None:
    from tests.conftest import make_account

    other = make_account(container, "other")
    with container.transaction() as s:
        ow = world(s, other["account_id"])
        add_contact(s, ow.account_id, "theirs@example.com", type_id=ow.type_id, country="DE")
        add_contact(s, w.account_id, "mine@example.com", type_id=w.type_id, country="DE")
    send_id = _launch(container, w, recipient_id=[f"segments_{w.segment_id}"])
    with container.transaction() as s:
        assert list(_deliveries(s, send_id)) == ["mine@example.com"]


def test_materialises_many_in_one_statement(container: Container, w: World) -> None:
    n = 3000
    aid = w.account_id
    with container.transaction() as s:
        s.execute(
            Address.__table__.insert(),
            [{"account_id": aid, "email": f"u{i}@example.com", "status": "unknown"} for i in range(n)],
        )
        from herald.contacts.models import Contact

        s.execute(
            Contact.__table__.insert(),
            [
                {"account_id": aid, "email": f"u{i}@example.com", "contact_type_id": w.type_id, "fields": {}}
                for i in range(n)
            ],
        )
    send_id = _launch(container, w)
    with container.transaction() as s:
        tokens = set(s.scalars(select(Delivery.token).where(Delivery.send_id == send_id)))
        assert len(tokens) == n
