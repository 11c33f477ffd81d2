"""The launcher step: due ready sends move to running once, with their audience, even with two workers."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.container import Container
from herald.sends.launcher import launch_due, step
from herald.sends.models import Delivery, SingleSend
from herald.sends.repository import SendRepository
from herald.sends.schemas import ScheduleIn
from herald.sends.service import SendService
from herald.worker import _STEPS, Worker
from tests.sends.factory import World, actor, add_contact, send_in, world


@pytest.fixture
def w(container: Container, account: dict[str, Any]) -> World:
    with container.transaction() as s:
        w = world(s, account["account_id"])
        for i in range(5):
            add_contact(s, w.account_id, f"c{i}@example.com", type_id=w.type_id)
        return w


def _create(container: Container, w: World, **overrides: Any) -> int:
    with container.transaction() as s:
        return SendService(s, actor(w.account_id)).create(send_in(w, **overrides)).id


def _status(container: Container, send_id: int) -> tuple[int, int]:
    with container.transaction() as s:
        send = s.get(SingleSend, send_id)
        assert send is not None
        return send.status, s.query(Delivery).filter_by(send_id=send_id).count()


def test_registers_its_step() -> None:
    assert "sends.launch" in [name for name, _ in _STEPS]


def test_launches_due_sends_only(container: Container, w: World) -> None:
    now_id = _create(container, w, schedule_type=0)
    draft_id = _create(container, w)
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    later_id = _create(container, w, schedule_type=1, schedule_date=day, schedule_time="12:00")
    paused_id = _create(container, w, schedule_type=0)
    with container.transaction() as s:
        svc = SendService(s, actor(w.account_id))
        svc.pause(svc.get(paused_id))
    assert launch_due(container) == [now_id]
    assert _status(container, now_id) == (2, 5)
    assert _status(container, draft_id) == (0, 0)
    assert _status(container, later_id) == (1, 0)  # a scheduled send waits
    assert _status(container, paused_id) == (1, 0)
    assert launch_due(container) == []
    assert launch_due(container, now=datetime.now(UTC) + timedelta(days=3)) == [later_id]
    with container.transaction() as s:
        svc = SendService(s, actor(w.account_id))
        svc.resume(svc.get(paused_id))
    assert launch_due(container) == [paused_id]


def test_worker_step_runs_off_the_event_loop(container: Container, w: World) -> None:
    send_id = _create(container, w, schedule_type=0)
    worker = Worker(container, name="test")
    assert asyncio.run(step(worker)) is True
    assert asyncio.run(step(worker)) is False
    assert _status(container, send_id) == (2, 5)


def test_rescheduling_after_cancel_launches(container: Container, w: World) -> None:
    send_id = _create(container, w, schedule_type=0)
    with container.transaction() as s:
        svc = SendService(s, actor(w.account_id))
        svc.cancel(svc.get(send_id))
    assert launch_due(container) == []
    with container.transaction() as s:
        svc = SendService(s, actor(w.account_id))
        svc.schedule(svc.get(send_id), ScheduleIn(schedule_type=0))
    assert launch_due(container) == [send_id]


def test_claim_skips_a_send_another_worker_holds(container: Container, w: World) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("row locks exist on PostgreSQL only; SQLite has a single writer")
    send_id = _create(container, w, schedule_type=0)
    with container.sessions() as holder:
        claimed = SendRepository(holder).claim_due(datetime.now(UTC))
        assert claimed is not None and claimed.id == send_id
        # A second worker, while the first holds the row, finds nothing to launch (and does not wait).
        assert launch_due(container) == []
        SendService(holder, actor(w.account_id)).launch(claimed)
        holder.commit()
    assert launch_due(container) == []
    assert _status(container, send_id) == (2, 5)


def test_two_concurrent_launchers_launch_each_send_once(container: Container, w: World) -> None:
    ids = {_create(container, w, schedule_type=0) for _ in range(6)}
    results: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = launch_due(container, limit=100)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    launched = results[0] + results[1]
    assert sorted(launched) == sorted(ids)
    for send_id in ids:
        assert _status(container, send_id) == (2, 5)


def test_a_send_whose_target_vanished_does_not_block_the_others(container: Container, w: World) -> None:
    from herald.contacts.models import Segment

    broken = _create(container, w, schedule_type=0, recipient_id=[f"segments_{w.segment_id}"])
    fine = _create(container, w, schedule_type=0)
    with container.transaction() as s:
        s.query(Segment).filter_by(id=w.segment_id).delete()
    assert sorted(launch_due(container)) == sorted([broken, fine])
    assert _status(container, broken) == (0, 0)
    assert _status(container, fine) == (2, 5)
    with container.transaction() as s:
        send = s.get(SingleSend, broken)
        assert send is not None and send.cancelled and send.scheduled_at is None
    assert launch_due(container) == []
