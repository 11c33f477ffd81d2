"""Recipient specs (contacts_N / segments_N) resolved to SQL over contacts, tenant-scoped."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from herald.accounts.service import AccountService
from herald.contacts.models import Contact, ContactType, Segment
from herald.contacts.targets import parse_target, target_condition
from herald.container import Container
from herald.errors import Invalid, NotFound


@pytest.fixture
def world(container: Container) -> dict[str, Any]:
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        acc = svc.create_account("acme")["account_id"]
        other = svc.create_account("other")["account_id"]
        mine = ContactType(account_id=acc, name="customers")
        theirs = ContactType(account_id=other, name="theirs")
        s.add_all([mine, theirs])
        s.flush()
        seg = Segment(account_id=acc, name="germans", rules={"all": [{"field": "country", "op": "eq", "value": "DE"}]})
        other_seg = Segment(account_id=other, name="x", rules={"all": []})
        s.add_all([seg, other_seg])
        s.add_all(
            [
                Contact(account_id=acc, email="a@example.com", contact_type_id=mine.id, country="DE"),
                Contact(account_id=acc, email="b@example.com", country="DE"),
                Contact(account_id=acc, email="c@example.com", contact_type_id=mine.id, country="FR"),
                # Same type id can't cross tenants, but same rules could: this row must never be selected.
                Contact(account_id=other, email="z@example.com", contact_type_id=theirs.id, country="DE"),
            ]
        )
        s.flush()
        return {"acc": acc, "other": other, "mine": mine.id, "theirs": theirs.id, "seg": seg.id, "oseg": other_seg.id}


def _emails(container: Container, acc: int, table: str, ident: int) -> list[str]:
    with container.sessions() as s:
        cond = target_condition(s, acc, table, ident)
        return list(s.scalars(select(Contact.email).where(cond).order_by(Contact.email)))


def test_contact_type_target(container: Container, world: dict[str, Any]) -> None:
    assert _emails(container, world["acc"], "contacts_", world["mine"]) == ["a@example.com", "c@example.com"]


def test_segment_target_is_scoped_to_the_account(container: Container, world: dict[str, Any]) -> None:
    assert _emails(container, world["acc"], "segments_", world["seg"]) == ["a@example.com", "b@example.com"]


def test_other_accounts_objects_are_not_found(container: Container, world: dict[str, Any]) -> None:
    with pytest.raises(NotFound) as err:
        _emails(container, world["acc"], "contacts_", world["theirs"])
    assert err.value.what == "contact type" and err.value.ident == world["theirs"]
    with pytest.raises(NotFound) as err:
        _emails(container, world["acc"], "segments_", world["oseg"])
    assert err.value.what == "segment"
    with pytest.raises(NotFound):
        _emails(container, world["acc"], "segments_", 999)


def test_parse_target() -> None:
    assert parse_target("contacts_3") == ("contacts_", 3)
    assert parse_target("segments_12") == ("segments_", 12)
    for bad in ("contacts_", "contacts_x", "lists_1", "segments_-1", "segments_0", "", "contacts_3 4"):
        with pytest.raises(Invalid) as err:
            parse_target(bad)
        assert err.value.field == "recipient_id"
