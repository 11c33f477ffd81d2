"""Queueing, claiming and finishing durable jobs; handlers register by kind."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from herald import wake
from herald.db.base import utcnow
from herald.jobs.models import Job
from herald.jobs.repository import JobRepository

if TYPE_CHECKING:
    from herald.container import Container

# A handler gets the container and a detached copy of the job; it opens its own short transactions and
# does network I/O outside them (a transaction held across a 10 s HTTP timeout would block SQLite writers).
JobHandler = Callable[["Container", Job], None]
_HANDLERS: dict[str, JobHandler] = {}
# Per-kind retry schedule: seconds to wait after the n-th failure (the last entry repeats).
_BACKOFF: dict[str, list[float]] = {}
DEFAULT_BACKOFF = [5, 30, 120, 600, 1800, 3600]


class RetryLater(Exception):
    """A handler's signal that the job failed in a way worth retrying (receiver down, 4xx, timeout)."""


class GiveUp(Exception):
    """A handler's signal that the job failed for good (retrying cannot help)."""


def register(kind: str, handler: JobHandler, *, backoff: list[float] | None = None) -> None:
    """Make `handler` run jobs of `kind` (called once at start-up by each feature)."""
    _HANDLERS[kind] = handler
    if backoff is not None:
        _BACKOFF[kind] = backoff


def handler_for(kind: str) -> JobHandler | None:
    """The registered handler of a kind."""
    return _HANDLERS.get(kind)


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    account_id: int | None = None,
    ordering_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = 8,
) -> Job:
    """Queue a job inside the caller's transaction, so a rollback drops it."""
    job = Job(
        kind=kind,
        payload=payload,
        account_id=account_id,
        ordering_key=ordering_key,
        run_at=run_at or utcnow(),
        max_attempts=max_attempts,
    )
    session.add(job)
    session.flush()
    if run_at is None or run_at <= utcnow():
        wake.wake_after_commit(session)  # `herald serve`'s worker starts it at once, not at its next poll
    return job


def next_delay(kind: str, attempts: int, *, scale: float = 1.0) -> float:
    """Seconds before retry number `attempts` (1-based), with a little jitter for non-fixed schedules.

    `scale` (settings.job_retry_scale) shrinks or stretches the whole schedule, e.g. for fault tests.
    """
    schedule = _BACKOFF.get(kind, DEFAULT_BACKOFF)
    base = schedule[min(attempts, len(schedule)) - 1] * scale
    return base if kind in _BACKOFF else base * (1 + random.random() * 0.2)


def release(session: Session, job_ids: list[int]) -> None:
    """Hand claimed jobs that never ran back to the queue at once (a stopping worker must not strand them)."""
    JobRepository(session).release(job_ids)


def finish(session: Session, job: Job, *, error: str | None = None, retry: bool = False, scale: float = 1.0) -> None:
    """Record the outcome of one run: done, retry later on schedule, or failed for good."""
    now = utcnow()
    job.lease_until = None
    if error is None:
        job.status, job.finished_at, job.last_error = "done", now, None
        return
    job.last_error = error[:2000]
    if retry and job.attempts < job.max_attempts:
        job.status = "pending"
        job.run_at = now + timedelta(seconds=next_delay(job.kind, job.attempts, scale=scale))
    else:
        job.status, job.finished_at = "failed", now


def claim(session: Session, *, owner: str, limit: int = 20, lease_seconds: int = 60) -> list[Job]:
    """Claim due jobs (respecting per-key order) and mark them running under a lease."""
    return JobRepository(session).claim_due(utcnow(), owner=owner, limit=limit, lease_seconds=lease_seconds)
