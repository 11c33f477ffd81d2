"""The worker loop: scheduled consent work, durable jobs and (registered by the sending feature) deliveries.

Runs inside `herald serve` (unless --no-worker) or alone as `herald worker`; any number of them can share
one PostgreSQL, since every claim is a leased row.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from herald import wake
from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.container import Container
from herald.jobs import service as jobs

log = logging.getLogger("herald.worker")

# An async step the loop runs every tick; returns True when it did work (the loop then ticks again at once).
Step = Callable[["Worker"], Awaitable[bool]]
_STEPS: list[tuple[str, Step]] = []


def register_step(name: str, step: Step) -> None:
    """Add a step to every worker's loop (features call this when loaded)."""
    if all(existing != name for existing, _ in _STEPS):
        _STEPS.append((name, step))


# Modules that register job handlers (jobs.register) or loop steps (register_step) when imported.
FEATURE_MODULES = (
    "herald.sends.launcher",
    "herald.sends.pipeline",
    "herald.webhooks.delivery",
    "herald.optin.sender",
    "herald.consent.retention",
)


def load_features() -> None:
    """Import the feature modules that register job handlers and worker steps."""
    from importlib import import_module

    for module in FEATURE_MODULES:
        try:
            import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def settle_heap() -> None:
    """Collect once and freeze what start-up allocated, for a process that is about to run a worker.

    Modules, ORM mappers and compiled templates then stay out of the cyclic collector's generations, so a
    full collection during a send no longer walks them (74–120 ms each, ≈ 20 µs per message of a
    5,000-message send, measured). Only for a process's entry point: frozen objects are never collected.
    """
    load_features()
    gc.collect()
    gc.freeze()


class Worker:
    """One worker process's loop."""

    def __init__(self, container: Container, *, name: str | None = None) -> None:
        self.container = container
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = asyncio.Event()
        self.wakeup = asyncio.Event()

    async def run(self) -> None:
        """Tick until stopped; a failing step is logged and retried on the next tick, never fatal."""
        load_features()
        from herald.inbound.smtp import start_listener, stop_listener

        inbound = await start_listener(self.container)  # only when HERALD_INBOUND_SMTP_PORT is set
        poll = self.container.settings.worker_poll_seconds
        log.info("worker %s started", self.name)
        with wake.listen(self.wakeup):
            while not self.stopping.is_set():
                # Cleared before the steps, not after them: work committed while they run wakes the next tick.
                self.wakeup.clear()
                busy = False
                for name, step in [("consent", _consent_step), ("jobs", _jobs_step), *_STEPS]:
                    try:
                        busy = await step(self) or busy
                    except Exception:
                        log.exception("worker step %s failed", name)
                if not busy:
                    try:
                        await asyncio.wait_for(self.wakeup.wait(), timeout=poll)
                    except TimeoutError:
                        pass
        await stop_listener(inbound)
        log.info("worker %s stopped", self.name)

    def stop(self) -> None:
        """Ask the loop to finish its current tick and return."""
        self.stopping.set()
        self.wakeup.set()


async def _consent_step(worker: Worker) -> bool:
    def expire() -> int:
        with worker.container.transaction() as session:
            return ConsentService(session, Actor(account_id=0, source="system")).expire_temporary_optouts()

    return await asyncio.to_thread(expire) > 0


async def _jobs_step(worker: Worker) -> bool:
    settings = worker.container.settings

    def claim() -> list[int]:
        with worker.container.transaction() as session:
            return [j.id for j in jobs.claim(session, owner=worker.name, lease_seconds=settings.job_lease_seconds)]

    def release(job_ids: list[int]) -> None:
        with worker.container.transaction() as session:
            jobs.release(session, job_ids)

    ids = await asyncio.to_thread(claim)
    for n, job_id in enumerate(ids):
        if worker.stopping.is_set():
            # Stopping: hand the unrun claims back now rather than strand them until their lease expires.
            await asyncio.to_thread(release, ids[n:])
            break
        await asyncio.to_thread(run_job, worker.container, job_id)
    return bool(ids)


def run_job(container: Container, job_id: int) -> None:
    """Run one claimed job and record the outcome; the handler runs outside any transaction."""
    from herald.jobs.models import Job

    with container.transaction() as session:
        job = session.get(Job, job_id)
        if job is None:
            return
    handler = jobs.handler_for(job.kind)
    error: str | None = None
    retry = True
    if handler is None:
        error = f"no handler for job kind {job.kind}"
    else:
        try:
            handler(container, job)
        except jobs.RetryLater as exc:
            error = str(exc) or "retry"
        except jobs.GiveUp as exc:
            error, retry = str(exc) or "failed", False
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.kind)
            error = f"{type(exc).__name__}: {exc}"
    with container.transaction() as session:
        fresh = session.get(Job, job_id)
        if fresh is not None:
            jobs.finish(session, fresh, error=error, retry=retry, scale=container.settings.job_retry_scale)
