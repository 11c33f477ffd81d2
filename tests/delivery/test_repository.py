"""Claiming deliveries: expired leases first, then due rows (fresh and retry-due) by id, never the not-yet-due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text, update

from herald.container import Container
from herald.db.base import utcnow
from herald.delivery.repository import ClaimHints, DeliveryRepository
from herald.sends.models import Delivery
from tests.sends.test_pipeline import _make_send


def _ids(container: Container, send_id: int) -> list[int]:
    with container.sessions() as session:
        return list(session.scalars(select(Delivery.id).where(Delivery.send_id == send_id).order_by(Delivery.id)))


def _claim(container: Container, owner: str, limit: int, send_id: int) -> list[int]:
    """The claimed ids in claim order (each returned with its send)."""
    now = utcnow()
    with container.transaction() as session:
        claimed = DeliveryRepository(session).claim(
            owner, limit=limit, now=now, lease_until=now + timedelta(seconds=60)
        )
    assert set(claimed.values()) <= {send_id}
    return list(claimed)


def test_claim_merges_fresh_and_retry_due_rows_by_id_after_expired_leases(container: Container) -> None:
    send_id, _ = _make_send(container, 7)
    ids = _ids(container, send_id)
    now = utcnow()
    with container.transaction() as session:
        due = update(Delivery).where(Delivery.id.in_([ids[1], ids[3]])).values(next_attempt_at=now - timedelta(hours=1))
        session.execute(due)
        later = update(Delivery).where(Delivery.id == ids[2]).values(next_attempt_at=now + timedelta(hours=1))
        session.execute(later)
        expired = update(Delivery).where(Delivery.id == ids[6])
        session.execute(expired.values(status="sending", lease_owner="gone", lease_until=now - timedelta(minutes=1)))

    assert _claim(container, "w1", 3, send_id) == [ids[6], ids[0], ids[1]]
    assert _claim(container, "w1", 10, send_id) == [ids[3], ids[4], ids[5]]  # ids[2] is not due yet
    assert _claim(container, "w1", 10, send_id) == []
    with container.sessions() as session:
        rows = dict(session.execute(select(Delivery.id, Delivery.lease_owner).where(Delivery.send_id == send_id)).all())
    assert rows[ids[2]] is None and all(rows[i] == "w1" for i in ids if i != ids[2])


def test_finish_sent_writes_only_rows_this_worker_still_leases(container: Container) -> None:
    """One UPDATE for the batch: Message-ID as render gives it, attempts + 1, and nothing for a lost lease."""
    from herald.delivery.render import message_id

    send_id, _ = _make_send(container, 3)
    mine = _claim(container, "w1", 2, send_id)
    lost, rest = mine[0], _ids(container, send_id)[2]
    now = utcnow()
    with container.transaction() as session:  # lease expired and taken over by another worker
        session.execute(update(Delivery).where(Delivery.id == lost).values(lease_owner="w2"))
    with container.transaction() as session:
        DeliveryRepository(session).finish_sent("w1", [*mine, rest], now=now, domain="shop.example")
    with container.sessions() as session:
        rows = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.send_id == send_id))}
    done = rows[mine[1]]
    assert (done.status, done.attempts, done.lease_owner, done.error) == ("sent", 1, None, None)
    assert done.message_id == message_id(done.token, "shop.example") and done.sent_at is not None
    assert (rows[lost].status, rows[lost].lease_owner, rows[lost].message_id) == ("sending", "w2", None)
    assert (rows[rest].status, rows[rest].attempts) == ("queued", 0)


def test_claim_queries_walk_the_claim_index_and_never_scan_deliveries(container: Container) -> None:
    """Each claim query must stop after `limit` rows: a scan of `deliveries` per claim makes a send O(N²).

    Checked with SQLite's EXPLAIN QUERY PLAN on the very statements a claim runs (its plans are fixed by the
    schema, where PostgreSQL's depend on table statistics; there the fix was measured with EXPLAIN ANALYZE).
    """
    if container.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plans are deterministic; PostgreSQL's depend on statistics")
    send_id, _ = _make_send(container, 40)
    with container.transaction() as session:  # most of the send already went out, and the planner knows it
        session.execute(update(Delivery).where(Delivery.id.not_in(_ids(container, send_id)[-5:])).values(status="sent"))
        session.execute(text("ANALYZE"))
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT DELIVERIES.ID"):
            rows = cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plans.append(" | ".join(str(row[-1]) for row in rows))

    event.listen(container.engine, "before_cursor_execute", explain)
    try:
        _claim(container, "w1", 2, send_id)
    finally:
        event.remove(container.engine, "before_cursor_execute", explain)
    assert len(plans) == 3, plans  # expired leases, fresh rows, retry-due rows
    for plan in plans:
        assert "SCAN deliveries" not in plan, plan
        assert "ix_deliveries_claim" in plan, plan


def _claim_hinted(container: Container, hints: ClaimHints, limit: int, now: datetime) -> list[int]:
    with container.transaction() as session:
        claimed = DeliveryRepository(session).claim(
            "w1", limit=limit, now=now, lease_until=now + timedelta(seconds=60), hints=hints
        )
    return list(claimed)


def test_claim_hints_continue_after_the_last_claim_and_still_take_rows_left_behind(container: Container) -> None:
    send_id, _ = _make_send(container, 6)
    ids = _ids(container, send_id)
    hints, now = ClaimHints(), utcnow()
    assert _claim_hinted(container, hints, 2, now) == ids[:2]
    assert hints.fresh_after == {send_id: ids[1]}
    with container.transaction() as session:  # a row behind the hint is fresh again (a claim that rolled back)
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(status="queued", lease_owner=None))
    assert _claim_hinted(container, hints, 2, now) == ids[2:4]  # after the hint, not the row behind it
    assert _claim_hinted(container, hints, 5, now) == [ids[0], ids[4], ids[5]]  # short: the whole range


def test_claim_hints_look_for_expired_leases_at_most_once_per_interval(container: Container) -> None:
    send_id, _ = _make_send(container, 2)
    ids = _ids(container, send_id)
    hints, now = ClaimHints(), utcnow()
    assert _claim_hinted(container, hints, 1, now) == ids[:1]
    with container.transaction() as session:  # its worker died: the lease ran out
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(lease_until=now - timedelta(seconds=1)))
    assert _claim_hinted(container, hints, 5, now + timedelta(milliseconds=500)) == ids[1:]
    assert _claim_hinted(container, hints, 5, now + hints.expired_interval) == ids[:1]
