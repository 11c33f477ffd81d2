"""Delivery tokens made at launch: unique, unguessable, usable by the public pages; fresh rows due at once."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import literal, select

from herald.container import Container
from herald.delivery import tokens
from herald.inbound.repository import InboundRepository
from herald.sends.audience import ordered_token
from herald.sends.models import Delivery
from herald.sends.service import SendService
from tests.sends.factory import World, actor, add_contact, send_in, world


@pytest.fixture
def w(container: Container, account: dict[str, Any]) -> World:
    with container.transaction() as s:
        return world(s, account["account_id"])


def _launch(container: Container, w: World) -> int:
    with container.transaction() as s:
        svc = SendService(s, actor(w.account_id))
        send = svc.create(send_in(w, schedule_type=0))
        svc.launch(send)
        return send.id


def _deliveries(container: Container, send_id: int) -> list[Delivery]:
    with container.sessions() as s:
        return list(s.scalars(select(Delivery).where(Delivery.send_id == send_id).order_by(Delivery.id)))


def _pg_only(container: Container) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("SQLite draws random tokens: a row's id is not known inside its INSERT … SELECT")


def test_launched_tokens_are_unique_hex_and_open_the_public_pages(
    container: Container, w: World, client: TestClient
) -> None:
    with container.transaction() as s:
        for i in range(5):
            add_contact(s, w.account_id, f"r{i}@example.com", type_id=w.type_id)
        add_contact(s, w.account_id, "out@example.com", type_id=w.type_id, status="opted_out")
    rows = _deliveries(container, _launch(container, w))
    assert len(rows) == 6
    assert len({d.token for d in rows}) == 6 and all(len(d.token) == 32 and int(d.token, 16) >= 0 for d in rows)
    queued = [d for d in rows if d.status == "queued"]
    # Due at once, as the claim's fresh-delivery query expects (NULL, walked in id order).
    assert len(queued) == 5 and all(d.next_attempt_at is None for d in queued)
    page = client.get(f"/p/{tokens.make(container.signer, tokens.PREFERENCES, queued[0].token)}")
    assert page.status_code == 200 and queued[0].email in page.text


def test_pg_token_is_the_id_then_a_keyed_hash_nobody_can_forge(container: Container, w: World) -> None:
    _pg_only(container)
    with container.transaction() as s:
        for i in range(3):
            add_contact(s, w.account_id, f"r{i}@example.com", type_id=w.type_id)
    first = _deliveries(container, _launch(container, w))
    second = _deliveries(container, _launch(container, w))
    for d in first + second:
        assert d.token[:8] == f"{d.id:08x}"
        # Not a hash of the id alone: the key is drawn per launch and never stored.
        assert d.token[8:] != hashlib.sha256(d.id.to_bytes(4, "big")).hexdigest()[:24]
    # Knowing a delivery's id (it is in the token) does not give its token: the suffix must match.
    with container.sessions() as s:
        repo = InboundRepository(s)
        target = first[0]
        assert repo.delivery_by_token(target.token) is not None
        assert repo.delivery_by_token(target.token[:8] + "0" * 24) is None
        assert repo.delivery_by_token(target.token[:8] + second[0].token[8:]) is None


def test_pg_ordered_token_depends_on_the_key(container: Container) -> None:
    _pg_only(container)
    one, two = secrets.token_bytes(32), secrets.token_bytes(32)
    with container.sessions() as s:
        same = s.execute(select(ordered_token(literal(41), one), ordered_token(literal(41), one))).one()
        other = s.scalar(select(ordered_token(literal(41), two)))
    assert same[0] == same[1] and same[0].startswith("00000029") and len(same[0]) == 32
    assert other is not None and other[:8] == same[0][:8] and other[8:] != same[0][8:]
    expected = hashlib.sha256(one + (41).to_bytes(4, "big")).hexdigest()[:24]
    assert same[0][8:] == expected


def test_relaunch_of_the_same_recipients_never_shares_a_token(container: Container, w: World) -> None:
    with container.transaction() as s:
        add_contact(s, w.account_id, "a@example.com", type_id=w.type_id)
    first = _deliveries(container, _launch(container, w))
    second = _deliveries(container, _launch(container, w))
    assert first[0].email == second[0].email and first[0].token != second[0].token
