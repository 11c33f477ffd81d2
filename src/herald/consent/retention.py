"""Worker step: purge unconfirmed subscriptions past the retention period (and addresses left with nothing).

Also registers the privacy confirmation-email job, since the worker loads this module.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING

from herald.consent import privacy_links  # noqa: F401  (registers the privacy.confirm job handler)
from herald.consent.privacy import purge_unconfirmed
from herald.worker import register_step

if TYPE_CHECKING:
    from herald.worker import Worker

# The purge is cheap but needs no second-by-second precision: each worker runs it at most this often.
INTERVAL_SECONDS = 300.0
BATCH = 200
_last_run: weakref.WeakKeyDictionary[Worker, float] = weakref.WeakKeyDictionary()


def run_purge(worker: Worker) -> int:
    """One purge batch in its own transaction; returns how many subscriptions went."""
    container = worker.container
    with container.transaction() as session:
        return purge_unconfirmed(
            session,
            hash_key=container.hash_key,
            days=container.settings.unconfirmed_retention_days,
            limit=BATCH,
        )


async def retention_step(worker: Worker) -> bool:
    """Purge when the interval has passed; a full batch asks the loop to come back at once."""
    now = time.monotonic()
    last = _last_run.get(worker)
    if last is not None and now - last < INTERVAL_SECONDS:
        return False
    purged = await asyncio.to_thread(run_purge, worker)
    # A full batch may mean more is waiting: leave the clock unset so the next tick continues.
    if purged < BATCH:
        _last_run[worker] = now
    return purged > 0


register_step("privacy.retention", retention_step)
