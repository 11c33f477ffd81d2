"""Waking this process's workers when a transaction that queued work for now commits.

`herald serve` runs the API and the worker loop in one process. Without a signal, a send created to go "now"
or an opt-in email queued by a request waits for the worker's next poll (`worker_poll_seconds`, 0.5 s by
default): a quarter of a second on average, a noticeable share of a 5,000-message send that takes about
four. Code that queues work marks its session (`wake_after_commit`); when that session's transaction
commits, every worker loop running in this process is woken (`listen`). A rollback drops the mark, so a
worker is never woken for work that does not exist; a worker woken for work another worker takes just ticks
once. Workers in other processes (`herald worker`, `herald serve --workers N`) keep polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from sqlalchemy import event
from sqlalchemy.orm import Session

_MARK = "herald.wake"
_listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def wake_after_commit(session: Session) -> None:
    """Wake this process's workers once the session's transaction commits."""
    session.info[_MARK] = True


@contextlib.contextmanager
def listen(wakeup: asyncio.Event) -> Iterator[None]:
    """Set `wakeup` (from any thread) whenever a marked transaction commits, while inside this block.

    Call it on the event loop that waits on `wakeup`: the event is set through that loop.
    """
    entry = (asyncio.get_running_loop(), wakeup)
    _listeners.add(entry)
    try:
        yield
    finally:
        _listeners.discard(entry)


def notify() -> None:
    """Wake every listening worker (thread-safe: requests commit on the server's thread pool)."""
    for loop, wakeup in list(_listeners):
        with contextlib.suppress(RuntimeError):  # that loop has just closed
            loop.call_soon_threadsafe(wakeup.set)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the work is not visible to others yet
        return
    if session.info.pop(_MARK, False):
        notify()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: object) -> None:
    if not session.in_transaction():  # the whole transaction is gone, not just a savepoint
        session.info.pop(_MARK, None)
