"""The SMTP relay misbehaves: absent at start, 4xx for a while, 5xx for some recipients."""

from __future__ import annotations

import math
import time

from sqlalchemy import select

from herald.consent.models import Address
from herald.container import Container
from herald.sends.models import STATUS_COMPLETED, STATUS_RUNNING, Delivery
from tests.faults.harness import Relay, bulk_send, delivery_statuses, send_status, wait_until, worker_thread

RETRY = 0.2  # delivery_retry_seconds: the first backoff; each further one doubles
FAST_RETRIES = {"delivery_retry_seconds": RETRY, "delivery_max_attempts": 10, "delivery_batch_size": 25}


def _attempts(container: Container, send_id: int) -> dict[str, int]:
    with container.sessions() as session:
        rows = session.execute(select(Delivery.email, Delivery.attempts).where(Delivery.send_id == send_id))
        return {email: attempts for email, attempts in rows}


def _max_failures_within(seconds: float) -> int:
    """How many attempts can fail within `seconds` when the k-th retry waits RETRY * 2**(k-1)."""
    # Attempt k starts no earlier than RETRY * (2**(k-1) - 1) after the first one.
    return math.floor(math.log2(seconds / RETRY + 1)) + 1


def test_relay_down_at_start_the_send_waits_retries_with_backoff_and_completes_once_it_is_up(
    pg_container: Container,
) -> None:
    relay = Relay()  # nothing listens on its port yet
    send = bulk_send(pg_container, 60)
    started = time.monotonic()
    with worker_thread(pg_container, smtp_url=relay.url, **FAST_RETRIES):
        try:
            wait_until(
                lambda: min(_attempts(pg_container, send.send_id).values()) >= 4,
                timeout=30,
                what="every delivery to fail four times against the absent relay",
            )
            during = delivery_statuses(pg_container, send.send_id)
            assert during == {"queued": 60} and send_status(pg_container, send.send_id) == STATUS_RUNNING
            down_for = time.monotonic() - started
            relay.start()
            wait_until(
                lambda: send_status(pg_container, send.send_id) == STATUS_COMPLETED,
                timeout=30,
                what="the send to complete once the relay is up",
            )
        finally:
            relay.stop()
    delivered = relay.delivered()
    attempts = _attempts(pg_container, send.send_id)
    ceiling = _max_failures_within(down_for) + 1
    print(
        f"\nrelay down {down_for:.1f} s; while down: {during}; delivered {sum(delivered.values())} to "
        f"{len(delivered)} recipients; attempts per delivery {min(attempts.values())}..{max(attempts.values())} "
        f"(backoff allows at most {ceiling}; a fixed {RETRY} s retry would have made ~{down_for / RETRY:.0f})"
    )
    assert sorted(delivered) == send.emails and set(delivered.values()) == {1}
    assert delivery_statuses(pg_container, send.send_id) == {"sent": 60}
    assert min(attempts.values()) >= 5 and max(attempts.values()) <= ceiling


def test_relay_4xx_for_a_while_each_recipient_retried_on_a_doubling_backoff_then_delivered_once(
    pg_container: Container,
) -> None:
    relay = Relay().start()
    relay.handler.tempfail_until = time.monotonic() + 1.5
    send = bulk_send(pg_container, 60)
    try:
        with worker_thread(pg_container, smtp_url=relay.url, **FAST_RETRIES):
            wait_until(
                lambda: send_status(pg_container, send.send_id) == STATUS_COMPLETED,
                timeout=30,
                what="the send to complete after the 4xx period",
            )
    finally:
        relay.stop()
    delivered, tries = relay.delivered(), relay.rcpt_attempts()
    gaps_ok = 0
    for email in send.emails:
        times = relay.handler.rcpt_times[email]
        for k, (before, after) in enumerate(zip(times, times[1:], strict=False), start=1):
            assert after - before >= RETRY * 2 ** (k - 1) - 0.02, f"{email}: retry {k} came too early"
            gaps_ok += 1
    print(
        f"\n4xx for 1.5 s: delivered {sum(delivered.values())} to {len(delivered)} recipients; RCPT attempts per "
        f"recipient {min(tries.values())}..{max(tries.values())}; {gaps_ok} retry gaps all >= the doubling backoff"
    )
    assert sorted(delivered) == send.emails and set(delivered.values()) == {1}
    assert min(tries.values()) >= 2 and gaps_ok >= 60
    assert delivery_statuses(pg_container, send.send_id) == {"sent": 60}


def test_relay_5xx_recipients_are_bounced_after_exactly_one_rcpt_and_the_others_delivered(
    pg_container: Container,
) -> None:
    relay = Relay().start()
    send = bulk_send(pg_container, 40)
    refused = send.emails[::8]
    for email in refused:
        relay.handler.refuse[email] = "550 5.1.1 no such user"
    relay.handler.tempfail_until = time.monotonic() + 0.5  # the refused ones stay refused during the 4xx period too
    try:
        with worker_thread(pg_container, smtp_url=relay.url, **FAST_RETRIES):
            wait_until(
                lambda: send_status(pg_container, send.send_id) == STATUS_COMPLETED,
                timeout=30,
                what="the send to complete",
            )
            time.sleep(2 * RETRY)  # room for a (wrong) retry of a bounced recipient to show up
    finally:
        relay.stop()
    delivered, tries = relay.delivered(), relay.rcpt_attempts()
    statuses = delivery_statuses(pg_container, send.send_id)
    with pg_container.sessions() as session:
        rows = session.execute(select(Address.email, Address.status).where(Address.email.in_(refused)))
        address_statuses = {email: status for email, status in rows}
    print(
        f"\n5xx for {len(refused)} recipients: RCPT attempts for them {[tries[e] for e in refused]}; "
        f"delivered {sum(delivered.values())}; statuses {statuses}"
    )
    assert all(tries[email] == 1 for email in refused)
    assert not set(refused) & set(delivered)
    assert sorted(delivered) == sorted(set(send.emails) - set(refused)) and set(delivered.values()) == {1}
    assert statuses == {"sent": 40 - len(refused), "bounced": len(refused)}
    assert set(address_statuses.values()) == {"bounced"} and len(address_statuses) == len(refused)
