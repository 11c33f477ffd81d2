"""SendRepository.delivery_by_token: whole-token matches only, through the primary key or the partial token index."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from herald.container import Container
from herald.sends.models import NOT_ID_TOKEN, Delivery
from herald.sends.repository import SendRepository, token_id
from herald.sends.service import SendService
from tests.sends.factory import World, actor, add_contact, send_in, world


@pytest.fixture
def w(container: Container, account: dict[str, Any]) -> World:
    with container.transaction() as s:
        return world(s, account["account_id"])


def _launched(container: Container, w: World, n: int = 3) -> list[Delivery]:
    with container.transaction() as s:
        for i in range(n):
            add_contact(s, w.account_id, f"r{i}@example.com", type_id=w.type_id)
        svc = SendService(s, actor(w.account_id))
        send = svc.create(send_in(w, schedule_type=0))
        svc.launch(send)
        send_id = send.id
    with container.sessions() as s:
        return list(s.scalars(select(Delivery).where(Delivery.send_id == send_id).order_by(Delivery.id)))


def _add_delivery(container: Container, w: World, token: str, *, address_id: int) -> int:
    with container.transaction() as s:
        row = Delivery(account_id=w.account_id, send_id=0, address_id=address_id, email="x@example.com", token=token)
        s.add(row)
        s.flush()
        return row.id


def test_token_id_reads_the_8_hex_digit_prefix() -> None:
    assert token_id("0000002a" + "f" * 24) == 42
    assert token_id("7fffffff") == 2**31 - 1
    assert token_id("80000000" + "0" * 24) is None  # beyond a 4-byte id
    assert token_id("0000002A" + "f" * 24) is None  # tokens are lowercase hex
    assert token_id("00002a") is None
    assert token_id("zz00002a" + "f" * 24) is None


def test_launched_tokens_match_whole_and_only_whole(container: Container, w: World) -> None:
    rows = _launched(container, w)
    with container.sessions() as s:
        repo = SendRepository(s)
        for d in rows:
            found = repo.delivery_by_token(d.token)
            assert found is not None and found.id == d.id
        first = rows[0].token
        assert repo.delivery_by_token(first[:8] + "0" * 24) is None
        assert repo.delivery_by_token(first[:8] + rows[1].token[8:]) is None
        assert repo.delivery_by_token(first[:-1]) is None
        assert repo.delivery_by_token(first + "0") is None
        assert repo.delivery_by_token("") is None


def test_tokens_not_derived_from_the_id_are_found_and_unique(container: Container, w: World) -> None:
    # A token that does not begin with its row's id (SQLite's random ones, rows made before the id prefix).
    token = "ffffffff" + "ab" * 12
    delivery_id = _add_delivery(container, w, token, address_id=1)
    with container.sessions() as s:
        found = SendRepository(s).delivery_by_token(token)
        assert found is not None and found.id == delivery_id
        assert SendRepository(s).delivery_by_token("fffffffe" + "ab" * 12) is None
    with pytest.raises(IntegrityError):
        _add_delivery(container, w, token, address_id=2)


def test_pg_launch_keeps_id_tokens_out_of_the_token_index(container: Container, w: World) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's tokens are random: all of them are in the unique token index")
    rows = _launched(container, w)
    legacy = "0fffffff" + "cd" * 12
    _add_delivery(container, w, legacy, address_id=9)
    with container.sessions() as s:
        definition = s.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_deliveries_token'"))
        assert definition is not None and "UNIQUE" in definition and "WHERE" in definition
        # Only the row whose token is not its id's: the launched ones are unique by the primary key.
        outside = s.scalars(select(Delivery.token).where(text(NOT_ID_TOKEN))).all()
        assert outside == [legacy] and all(d.token[:8] == f"{d.id:08x}" for d in rows)


@pytest.mark.parametrize("kind", ["launched", "other"])
def test_pg_lookup_can_use_the_indexes(container: Container, w: World, kind: str) -> None:
    """The lookup's own statement is answerable from the indexes (the planner proves the partial index applies)."""
    if container.engine.dialect.name != "postgresql":
        pytest.skip("the partial token index exists on PostgreSQL only")
    token = _launched(container, w)[0].token if kind == "launched" else "0fffffff" + "cd" * 12
    if kind == "other":
        _add_delivery(container, w, token, address_id=9)
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "FROM deliveries" in statement:
            seen.append((statement, parameters))

    with container.sessions() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        event.listen(container.engine, "before_cursor_execute", capture)
        try:
            found = SendRepository(s).delivery_by_token(token)
        finally:
            event.remove(container.engine, "before_cursor_execute", capture)
        assert found is not None and found.token == token and len(seen) == 1
        statement, parameters = seen[0]
        plan = "\n".join(row[0] for row in s.connection().exec_driver_sql("EXPLAIN " + statement, parameters))
    assert "Seq Scan" not in plan and "uq_deliveries_token" in plan and "pk_deliveries" in plan
