"""Stats from the ledger: deliveries and events, counted once per recipient where the stat is unique."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from herald.container import Container
from herald.sends.models import Delivery, DeliveryEvent
from herald.sends.service import SendService
from herald.sends.stats import open_tokens, stats_for
from tests.sends.factory import actor, add_contact, send_in, world


def test_stats_count_from_deliveries_and_events(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        w = world(s, account["account_id"])
        for i in range(6):
            add_contact(s, w.account_id, f"c{i}@example.com", type_id=w.type_id)
        add_contact(s, w.account_id, "out@example.com", type_id=w.type_id, status="opted_out")
        svc = SendService(s, actor(w.account_id))
        send = svc.create(send_in(w, schedule_type=0))
        idle = svc.create(send_in(w))
        svc.launch(send)
        ds = s.query(Delivery).filter_by(send_id=send.id, status="queued").order_by(Delivery.id).all()
        now = datetime.now(UTC)
        ds[0].status, ds[0].sent_at = "sent", now
        ds[1].status, ds[1].sent_at = "sent", now
        ds[2].status, ds[2].sent_at = "bounced", now  # accepted, then a DSN marked it bounced
        ds[3].status = "bounced"  # refused with 5xx at send time
        ds[4].status = "cancelled"

        def event(d: Delivery, kind: str) -> None:
            s.add(DeliveryEvent(account_id=w.account_id, send_id=send.id, delivery_id=d.id, kind=kind))

        for kind in ("open", "open", "open", "click", "click", "unsubscribe", "unsubscribe"):
            event(ds[0], kind)
        event(ds[1], "open")
        event(ds[1], "complaint")
        event(ds[1], "bounce")  # a late bounce for a delivery still marked sent
        event(ds[2], "bounce")  # the same bounce as its status: counted once
        s.flush()
        stats = stats_for(s, [send.id, idle.id])
        assert stats[send.id].as_dict() == {
            "triggered": 5,
            "delivered": 3,
            "unique_opens": 2,
            "total_opens": 4,
            "clicks": 2,
            "unique_clicks": 1,
            "bounces": 3,
            "complaints": 1,
            "unsubscribes": 1,
        }
        assert stats[idle.id].as_dict() == dict.fromkeys(stats[idle.id].as_dict(), 0)
        tokens = open_tokens(s, [send.id, idle.id])
        assert tokens == {
            send.id: {str(ds[0].contact_id): ds[0].token, str(ds[1].contact_id): ds[1].token},
            idle.id: {},
        }


def test_the_progress_counts_read_the_claim_index_not_the_rows(container: Container, account: dict[str, Any]) -> None:
    """A running send's page is polled: its per-status count must be answered from the index alone.

    Checked with SQLite's EXPLAIN QUERY PLAN (deterministic; PostgreSQL's index-only scans depend on its
    visibility map, i.e. on vacuum).
    """
    if container.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plans are deterministic; PostgreSQL's depend on the visibility map")
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "count(*)" in statement and "GROUP BY deliveries.send_id, deliveries.status" in statement:
            rows = cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plans.append(" | ".join(str(row[-1]) for row in rows))

    with container.transaction() as s:
        w = world(s, account["account_id"])
        add_contact(s, w.account_id, "c@example.com", type_id=w.type_id)
        svc = SendService(s, actor(w.account_id))
        send = svc.create(send_in(w, schedule_type=0))
        svc.launch(send)
        event.listen(container.engine, "before_cursor_execute", explain)
        try:
            assert stats_for(s, [send.id])[send.id].triggered == 1
        finally:
            event.remove(container.engine, "before_cursor_execute", explain)
    assert len(plans) == 1 and "USING COVERING INDEX ix_deliveries_claim" in plans[0], plans
