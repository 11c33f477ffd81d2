"""The worker step that launches due sends: ready → running, with the audience materialised in one transaction.

Each launch claims one send row with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's single writer
needs no row lock), so any number of workers can share one database and each send launches once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from herald.actor import Actor
from herald.container import Container
from herald.db.base import utcnow
from herald.errors import HeraldError
from herald.sends.repository import SendRepository
from herald.sends.service import SendService

if TYPE_CHECKING:
    from herald.worker import Worker

log = logging.getLogger("herald.sends.launcher")

# Sends launched per tick at most, so one tick never starves the delivery pipeline.
MAX_PER_TICK = 10


def launch_one(container: Container, *, now: datetime | None = None) -> int | None:
    """Launch the next due send, if any; returns its id."""
    with container.transaction() as session:
        send = SendRepository(session).claim_due(now or utcnow())
        if send is None:
            return None
        svc = SendService(session, Actor(account_id=send.account_id, source="worker"))
        try:
            with session.begin_nested():
                svc.launch(send, now=now)
        except HeraldError as exc:
            # A target deleted since scheduling: hand the send back as a draft rather than retrying it
            # on every tick (it would be first in line forever and block every later send).
            log.warning("send %s (%s) cannot launch: %s", send.id, send.utr, exc.message)
            svc.abandon_launch(send)
            return send.id
        log.info("launched send %s (%s)", send.id, send.utr)
        return send.id


def launch_due(container: Container, *, now: datetime | None = None, limit: int = MAX_PER_TICK) -> list[int]:
    """Launch due sends, one transaction each, up to `limit`; returns their ids."""
    launched: list[int] = []
    while len(launched) < limit:
        send_id = launch_one(container, now=now)
        if send_id is None:
            break
        launched.append(send_id)
    return launched


async def step(worker: Worker) -> bool:
    """The worker loop's launcher step (database work off the event loop)."""
    return bool(await asyncio.to_thread(launch_due, worker.container))


def _register() -> None:
    from herald.worker import register_step

    register_step("sends.launch", step)


_register()
