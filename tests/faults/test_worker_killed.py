"""SIGKILL one of two `herald worker` processes in the middle of a 20,000-recipient send."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from herald.container import Container
from herald.sends.models import STATUS_COMPLETED, Delivery
from tests.faults.harness import Relay, bulk_send, delivery_statuses, send_status, spawn_worker, wait_until

RECIPIENTS = 20_000
BATCH = 200


def test_sigkill_one_of_two_workers_mid_send_everyone_mailed_duplicates_only_from_its_inflight_batch(
    pg_container: Container, tmp_path: Path
) -> None:
    relay = Relay().start()
    settings = pg_container.settings.model_copy(update={"smtp_url": relay.url})
    send = bulk_send(pg_container, RECIPIENTS)
    tuning = {"delivery_batch_size": BATCH, "delivery_lease_seconds": 5}
    victim = spawn_worker(settings, tmp_path, "victim", **tuning)
    survivor = spawn_worker(settings, tmp_path, "survivor", **tuning)
    try:
        wait_until(
            lambda: sum(relay.delivered().values()) >= 3000 or not victim.alive(),
            timeout=90,
            what="3,000 messages from the two workers",
        )
        assert victim.alive(), victim.log_tail()
        victim.kill()
        at_kill = sum(relay.delivered().values())
        # What the killed worker held: claimed rows it never wrote back (at most the batch on the wire + the next).
        with pg_container.sessions() as session:
            in_flight = set(
                session.scalars(
                    select(Delivery.email).where(Delivery.send_id == send.send_id, Delivery.lease_owner == victim.name)
                )
            )
        assert at_kill < RECIPIENTS, "the send finished before the kill: nothing was proved"
        wait_until(
            lambda: send_status(pg_container, send.send_id) == STATUS_COMPLETED or not survivor.alive(),
            timeout=120,
            what="the surviving worker to finish the send",
            poll=0.2,
        )
        assert survivor.alive(), survivor.log_tail()
    finally:
        victim.kill()
        survivor.stop()
        relay.stop()

    delivered = relay.delivered()
    statuses = delivery_statuses(pg_container, send.send_id)
    duplicated = {email: n - 1 for email, n in delivered.items() if n > 1}
    duplicates = sum(duplicated.values())
    missing = set(send.emails) - set(delivered)
    print(
        f"\nSIGKILL after {at_kill} of {RECIPIENTS} messages; killed worker held {len(in_flight)} leased rows; "
        f"delivered {sum(delivered.values())} messages to {len(delivered)} recipients; missing {len(missing)}; "
        f"duplicates {duplicates} (limit: one batch of {BATCH}); statuses {statuses}"
    )
    assert not missing
    assert set(delivered) == set(send.emails)
    assert duplicates <= BATCH
    assert set(duplicated) <= in_flight, "a duplicate came from outside the killed worker's leased rows"
    assert statuses == {"sent": RECIPIENTS}
