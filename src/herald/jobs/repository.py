"""SQL for the job queue."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from herald.db.engine import is_postgres
from herald.jobs.models import Job


class JobRepository:
    """Claims jobs with SKIP LOCKED on PostgreSQL; SQLite's single writer needs no row locks."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim_due(self, now: datetime, *, owner: str, limit: int, lease_seconds: int) -> list[Job]:
        """Due pending jobs, plus running ones whose lease expired, that no earlier job of their key blocks."""
        earlier = aliased(Job)
        blocked = exists().where(
            earlier.ordering_key == Job.ordering_key,
            earlier.id < Job.id,
            earlier.status.in_(("pending", "running")),
        )
        due = or_(
            and_(Job.status == "pending", Job.run_at <= now),
            and_(Job.status == "running", Job.lease_until < now),
        )
        stmt = (
            select(Job).where(due, or_(Job.ordering_key.is_(None), ~blocked)).order_by(Job.run_at, Job.id).limit(limit)
        )
        if is_postgres(self.session):
            stmt = stmt.with_for_update(skip_locked=True, of=Job)
        jobs = list(self.session.scalars(stmt))
        for job in jobs:
            job.status = "running"
            job.attempts += 1
            job.lease_until = now + timedelta(seconds=lease_seconds)
        self.session.flush()
        return jobs

    def release(self, job_ids: list[int]) -> None:
        """Put claimed-but-unrun jobs back to pending, undoing the attempt their claim counted."""
        if job_ids:
            self.session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.status == "running")
                .values(status="pending", attempts=Job.attempts - 1, lease_until=None)
                .execution_options(synchronize_session=False)
            )
