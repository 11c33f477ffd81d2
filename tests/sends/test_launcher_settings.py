"""The launch's PostgreSQL settings (jit, work_mem) last for its transaction only, never for the pooled connection."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from herald.container import Container
from herald.sends.service import SendService
from tests.sends.factory import actor, add_contact, send_in, world


def test_launch_settings_end_with_its_transaction(container: Container, account: dict[str, Any]) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("SET LOCAL tunes PostgreSQL's launch only")
    with container.transaction() as s:
        w = world(s, account["account_id"])
        add_contact(s, w.account_id, "a@example.com", type_id=w.type_id)
    with container.engine.connect() as conn:
        before = conn.execute(text("SHOW work_mem")).scalar_one(), conn.execute(text("SHOW jit")).scalar_one()
        conn.commit()
        with Session(bind=conn) as s:
            svc = SendService(s, actor(w.account_id))
            send = svc.create(send_in(w, schedule_type=0))
            svc.launch(send)
            during = s.execute(text("SHOW work_mem")).scalar_one(), s.execute(text("SHOW jit")).scalar_one()
            s.commit()
        after = conn.execute(text("SHOW work_mem")).scalar_one(), conn.execute(text("SHOW jit")).scalar_one()
    assert during == ("64MB", "off")
    assert after == before
