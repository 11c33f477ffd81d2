"""Stats from the ledger: deliveries and events, counted once per recipient where the stat is unique."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
