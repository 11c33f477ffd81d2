"""PostgreSQL restarts in the middle of a send: the workers reconnect and finish, nobody lost.

This restarts the machine's PostgreSQL cluster, so it must run with no other test process beside it: under
xdist it is deselected (tests/faults/conftest.py) and .ci/run runs it alone afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from herald.container import Container
from herald.sends.models import STATUS_COMPLETED
from tests.conftest import IN_CI, PG_ADMIN_URL
from tests.faults.harness import Relay, bulk_send, delivery_statuses, send_status, spawn_worker, wait_until

RECIPIENTS = 6000
BATCH = 100
CLUSTERS = Path("/etc/postgresql")


def _cluster() -> list[str]:
    """`pg_ctlcluster` and the version of the machine's `main` cluster, or fail/skip saying what is missing."""
    tool = shutil.which("pg_ctlcluster")
    versions = sorted(p.name for p in CLUSTERS.iterdir()) if CLUSTERS.is_dir() else []
    if tool is None or not versions:
        message = "restarting PostgreSQL needs pg_ctlcluster and a cluster under /etc/postgresql"
        if IN_CI:
            pytest.fail(message)
        pytest.skip("!!! " + message)
    return [tool, "--skip-systemctl-redirect", versions[-1], "main"]


def _accepts_connections() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _ensure_running(cluster: list[str]) -> None:
    """Whatever happened, leave PostgreSQL up and accepting connections."""
    if subprocess.run([*cluster, "status"], capture_output=True, check=False).returncode != 0:
        subprocess.run([*cluster, "start"], capture_output=True, check=False, timeout=120)
    wait_until(_accepts_connections, timeout=120, what="PostgreSQL to accept connections again", poll=0.2)


def _completed(container: Container, send_id: int) -> bool:
    try:
        return send_status(container, send_id) == STATUS_COMPLETED
    except DBAPIError:  # the test's own connection may hit the restart too
        return False


@pytest.mark.restarts_postgresql
def test_postgresql_restart_mid_send_workers_reconnect_and_finish_with_nobody_lost(
    pg_container: Container, tmp_path: Path
) -> None:
    cluster = _cluster()
    relay = Relay().start()
    settings = pg_container.settings.model_copy(update={"smtp_url": relay.url})
    send = bulk_send(pg_container, RECIPIENTS)
    tuning = {"delivery_batch_size": BATCH, "delivery_lease_seconds": 10}
    workers = [spawn_worker(settings, tmp_path, f"w{i}", **tuning) for i in range(2)]
    restart_seconds = 0.0
    try:
        wait_until(
            lambda: sum(relay.delivered().values()) >= 1000, timeout=90, what="1,000 messages before the restart"
        )
        at_restart = sum(relay.delivered().values())
        began = time.monotonic()
        try:
            subprocess.run([*cluster, "restart"], check=True, capture_output=True, timeout=120)
        finally:
            _ensure_running(cluster)
        restart_seconds = time.monotonic() - began
        assert at_restart < RECIPIENTS, "the send finished before the restart: nothing was proved"
        wait_until(
            lambda: _completed(pg_container, send.send_id) or not all(w.alive() for w in workers),
            timeout=120,
            what="the workers to finish the send after the restart",
            poll=0.2,
        )
        for w in workers:
            assert w.alive(), w.log_tail()
    finally:
        for w in workers:
            w.stop()
        relay.stop()
    delivered = relay.delivered()
    duplicates = sum(n - 1 for n in delivered.values())
    missing = set(send.emails) - set(delivered)
    statuses = delivery_statuses(pg_container, send.send_id)
    logs = [w.log.read_text(errors="replace") for w in workers]
    failed_steps = sum(log.count("worker step") for log in logs)
    write_retries = sum(log.count("outcomes failed, retrying") for log in logs)
    print(
        f"\nPostgreSQL restarted ({restart_seconds:.1f} s) after {at_restart} of {RECIPIENTS} messages; "
        f"delivered {sum(delivered.values())} to {len(delivered)}; missing {len(missing)}; duplicates {duplicates}; "
        f"worker steps failed and retried {failed_steps}, outcome writes retried {write_retries}; statuses {statuses}"
    )
    assert not missing
    assert duplicates <= 2 * BATCH, "more duplicates than one in-flight batch per worker"
    assert statuses == {"sent": RECIPIENTS}
