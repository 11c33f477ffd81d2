"""PrivacyService: the export holds every kind of record; erasure leaves no personal data in any table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from herald.actor import Actor
from herald.consent.models import ConsentEvent, Suppression
from herald.consent.privacy import PrivacyService
from herald.consent.service import ConsentService, email_hash
from herald.container import Container
from herald.db.base import utcnow
from herald.errors import Invalid, NotFound
from herald.sends.models import Delivery
from tests.consent.privacy_factory import (
    BYSTANDER,
    CONTACT,
    CUSTOM_FIELDS,
    EMAIL,
    IP,
    USER_AGENT,
    address_status,
    scan,
    seed_person,
)


def svc(session: Any, account_id: int, *, container: Container, source: str = "api") -> PrivacyService:
    return PrivacyService(session, Actor(account_id=account_id, source=source), hash_key=container.hash_key)


def test_export_contains_every_kind_of_record(container: Container, account: dict[str, Any]) -> None:
    aid = account["account_id"]
    person = seed_person(container, aid)
    with container.transaction() as s:
        doc = svc(s, aid, container=container).export("  ZED.quux_9@Example.com ")
    assert doc["email"] == EMAIL
    assert doc["address"]["status"] == "spam_reported" and doc["address"]["id"] == person.address_id
    contact = doc["contact"]
    assert {k: contact[k] for k in CONTACT} == CONTACT and contact["fields"] == CUSTOM_FIELDS
    assert [(s["list_id"], s["list_name"], s["status"]) for s in doc["subscriptions"]] == [
        (person.list_id, "Weekly", "unconfirmed")
    ]
    assert doc["optin_records"][0]["subscription_id"] == person.subscription_id
    assert EMAIL in doc["optin_records"][0]["detail"]
    assert [(t["topic_id"], t["topic_name"]) for t in doc["topic_unsubscribes"]] == [(person.topic_id, "Offers")]
    kinds = [(e["kind"], e["from_status"], e["to_status"]) for e in doc["consent_events"]]
    assert kinds == [
        ("subscription", None, "unconfirmed"),
        ("topic", "subscribed", "unsubscribed"),
        ("status", "unknown", "spam_reported"),
    ]
    assert all(e["ip"] == IP and e["user_agent"] == USER_AGENT for e in doc["consent_events"])
    (delivery,) = doc["deliveries"]
    assert (
        delivery["id"] == person.delivery_id and delivery["email"] == EMAIL and delivery["send_name"] == "Spring sale"
    )
    assert [e["kind"] for e in delivery["events"]] == ["open", "complaint"]
    assert delivery["events"][0]["ip"] == IP
    (inbound,) = doc["inbound_messages"]
    assert inbound["delivery_id"] == person.delivery_id and EMAIL in inbound["raw"]


def test_export_of_unknown_address_or_other_tenant_is_not_found(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    seed_person(container, account["account_id"])
    with container.transaction() as s:
        with pytest.raises(NotFound):
            svc(s, account["account_id"], container=container).export("nobody@example.com")
        with pytest.raises(NotFound):
            svc(s, other_account["account_id"], container=container).export(EMAIL)
        with pytest.raises(NotFound):
            svc(s, other_account["account_id"], container=container).erase(EMAIL)
        with pytest.raises(Invalid):
            svc(s, account["account_id"], container=container).export("not an email")
    assert address_status(container, account["account_id"], EMAIL) == "spam_reported"


def test_erasure_leaves_no_personal_data_in_any_table(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    person = seed_person(container, aid)
    # Someone else in the same account, and the same person in another account, are not touched.
    bystander = seed_person(container, aid, status="opted_in", **BYSTANDER)
    seed_person(container, other_account["account_id"])
    before = scan(container, person.needles)
    tables = {hit.split(".")[0] for hit in before}
    assert {
        "addresses",
        "contacts",
        "consent_events",
        "deliveries",
        "delivery_events",
        "inbound_messages",
        "optin_records",
        "jobs",
    } <= tables

    with container.transaction() as s:
        result = svc(s, aid, container=container).erase(EMAIL)
    assert result.suppressed == "spam_reported" and result.contact_removed
    assert result.deliveries_scrubbed == 1 and result.ledger_events_anonymised == 3

    # Only the other account's copy of the person remains; drop it and nothing of the person is left.
    with container.transaction() as s:
        svc(s, other_account["account_id"], container=container).erase(EMAIL)
    assert scan(container, person.needles) == []
    # The bystander's data is all still there.
    assert {h.split(".")[0] for h in scan(container, bystander.needles)} == tables
    assert address_status(container, aid, bystander.email) == "opted_in"


def test_erasure_keeps_the_anonymised_ledger_skeleton_and_an_erasure_event(
    container: Container, account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    seed_person(container, aid)
    with container.transaction() as s:
        svc(s, aid, container=container).erase(EMAIL)
    with container.transaction() as s:
        rows = s.scalars(select(ConsentEvent).where(ConsentEvent.account_id == aid).order_by(ConsentEvent.id)).all()
        assert [(e.kind, e.from_status, e.to_status, e.source) for e in rows] == [
            ("subscription", None, "unconfirmed", "api"),
            ("topic", "subscribed", "unsubscribed", "api"),
            ("status", "unknown", "spam_reported", "api"),
            ("erasure", "spam_reported", "spam_reported", "api"),
        ]
        assert all(e.address_id is None and e.ip is None and e.user_agent is None for e in rows)
        assert all(e.reason is None for e in rows[:-1]) and "erased" in (rows[-1].reason or "")
        (supp,) = s.scalars(select(Suppression).where(Suppression.account_id == aid)).all()
        assert supp.email_hash == email_hash(container.hash_key, EMAIL) and supp.status == "spam_reported"
        assert s.scalar(select(func.count()).select_from(Delivery)) == 1  # the delivery stays, anonymised


def test_erased_spam_reporter_comes_back_suppressed_and_is_never_eligible(
    container: Container, account: dict[str, Any]
) -> None:
    from herald.consent.eligibility import eligible
    from herald.consent.models import Address

    aid = account["account_id"]
    seed_person(container, aid)
    with container.transaction() as s:
        svc(s, aid, container=container).erase(EMAIL)
    assert address_status(container, aid, EMAIL) is None
    with container.transaction() as s:
        addr = ConsentService(s, Actor(account_id=aid, source="api"), hash_key=container.hash_key).ensure(EMAIL)
        assert addr.status == "spam_reported"
        events = s.scalars(select(ConsentEvent).where(ConsentEvent.address_id == addr.id)).all()
        assert [(e.kind, e.to_status) for e in events] == [("suppressed", "spam_reported")]
        eligible_emails = s.scalars(select(Address.email).where(Address.account_id == aid, eligible(utcnow()))).all()
        assert EMAIL not in eligible_emails


@pytest.mark.parametrize("status", ["opted_out", "bounced"])
def test_every_suppressing_state_is_kept(container: Container, account: dict[str, Any], status: str) -> None:
    aid = account["account_id"]
    seed_person(container, aid, status=status)
    with container.transaction() as s:
        assert svc(s, aid, container=container).erase(EMAIL).suppressed == status
    with container.transaction() as s:
        assert ConsentService(s, Actor(account_id=aid, source="api"), hash_key=container.hash_key).ensure(
            EMAIL
        ).status == (status)


def test_non_suppressed_address_is_erased_without_a_suppression(container: Container, account: dict[str, Any]) -> None:
    aid = account["account_id"]
    seed_person(container, aid, status="opted_in")
    with container.transaction() as s:
        assert svc(s, aid, container=container).erase(EMAIL).suppressed is None
    with container.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0
        assert ConsentService(s, Actor(account_id=aid, source="api"), hash_key=container.hash_key).ensure(
            EMAIL
        ).status == ("unknown")


def test_running_temporary_optout_is_kept_for_good_but_an_ended_one_is_not(
    container: Container, account: dict[str, Any]
) -> None:
    aid = account["account_id"]
    seed_person(container, aid, status=None)
    seed_person(container, aid, email="ended@example.com", status=None)
    with container.transaction() as s:
        consent = ConsentService(s, Actor(account_id=aid, source="api"))
        consent.set_status(EMAIL, "opted_out", until=utcnow() + timedelta(days=3))
        ended = consent.set_status("ended@example.com", "opted_out", until=utcnow() + timedelta(days=3))
        ended.opted_out_until = utcnow() - timedelta(seconds=1)
    with container.transaction() as s:
        assert svc(s, aid, container=container).erase(EMAIL).suppressed == "opted_out"
        assert svc(s, aid, container=container).erase("ended@example.com").suppressed is None


def test_unsent_deliveries_of_an_erased_address_are_stopped(container: Container, account: dict[str, Any]) -> None:
    aid = account["account_id"]
    person = seed_person(container, aid)
    with container.transaction() as s:
        s.get_one(Delivery, person.delivery_id).status = "queued"
    with container.transaction() as s:
        svc(s, aid, container=container).erase(EMAIL)
    with container.transaction() as s:
        d = s.get_one(Delivery, person.delivery_id)
        assert (d.status, d.email, d.address_id, d.contact_id, d.error) == ("suppressed", None, None, None, None)


def test_erasing_again_after_recreation_keeps_the_suppression(container: Container, account: dict[str, Any]) -> None:
    aid = account["account_id"]
    seed_person(container, aid)
    for _ in range(2):
        with container.transaction() as s:
            assert svc(s, aid, container=container).erase(EMAIL).suppressed == "spam_reported"
        with container.transaction() as s:
            ConsentService(s, Actor(account_id=aid, source="api"), hash_key=container.hash_key).ensure(EMAIL)
    with container.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Suppression)) == 1
    assert address_status(container, aid, EMAIL) == "spam_reported"
