"""Waking the process's workers on commit: only for committed work that is due now, never for a savepoint."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from herald import wake
from herald.container import Container
from herald.db.base import utcnow
from herald.jobs import service as jobs


def _woken(container: Container, queue: object) -> bool:
    """Run `queue(session)` in a transaction on another thread and report whether a listening loop was woken."""

    async def go() -> bool:
        event = asyncio.Event()
        with wake.listen(event):

            def work() -> None:
                with container.transaction() as session:
                    queue(session)  # type: ignore[operator]

            try:
                await asyncio.to_thread(work)
            except RuntimeError:
                pass  # the rolled-back case
            await asyncio.sleep(0.05)  # call_soon_threadsafe's callback runs on this loop
        return event.is_set()

    return asyncio.run(go())


def test_a_job_due_now_wakes_on_commit_and_a_later_one_does_not(container: Container) -> None:
    assert _woken(container, lambda s: jobs.enqueue(s, "webhook.deliver", {}))
    later = utcnow() + timedelta(minutes=5)
    assert not _woken(container, lambda s: jobs.enqueue(s, "webhook.deliver", {}, run_at=later))


def test_a_rolled_back_transaction_wakes_nobody(container: Container) -> None:
    def queue_then_fail(session: object) -> None:
        jobs.enqueue(session, "webhook.deliver", {})  # type: ignore[arg-type]
        raise RuntimeError("the request failed")

    assert not _woken(container, queue_then_fail)


def test_a_savepoint_does_not_wake_before_the_transaction_commits(container: Container) -> None:
    seen: list[bool] = []

    async def go() -> None:
        event = asyncio.Event()
        with wake.listen(event):

            def work() -> None:
                with container.transaction() as session:
                    with session.begin_nested():
                        jobs.enqueue(session, "webhook.deliver", {})
                    time.sleep(0.05)  # time for the loop to run a wake-up, had the release sent one
                    seen.append(event.is_set())  # none: the savepoint's release is not a commit

            await asyncio.to_thread(work)
            await asyncio.sleep(0.05)
            seen.append(event.is_set())

    asyncio.run(go())
    assert seen == [False, True]
