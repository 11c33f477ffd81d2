"""An unsubscribe accepted while the address's delivery is queued: it is never mailed afterwards."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.app import create_app
from herald.container import Container
from herald.delivery import tokens
from herald.sends.models import STATUS_COMPLETED, Delivery
from tests.conftest import auth
from tests.faults.harness import Relay, bulk_send, delivery_statuses, send_status, wait_until, worker_thread

RECIPIENTS = 400


def _delivery(container: Container, send_id: int, email: str) -> Delivery:
    with container.sessions() as session:
        return session.scalars(select(Delivery).where(Delivery.send_id == send_id, Delivery.email == email)).one()


def _unsubscribe(client: TestClient, container: Container, account: dict[str, Any], email: str, d: Delivery) -> None:
    """Through the public one-click route for even positions, through the native API for odd ones."""
    if int(email[1:6]) % 2 == 0:
        token = tokens.make(container.signer, tokens.UNSUBSCRIBE, d.token)
        response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200 and "set-cookie" not in response.headers
    else:
        response = client.put(f"/api/v1/addresses/{email}/status", json={"status": "opted_out"}, headers=auth(account))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "opted_out"


def test_unsubscribed_through_one_click_or_api_while_queued_mid_send_is_never_mailed(
    pg_container: Container,
) -> None:
    relay = Relay().start()
    send = bulk_send(pg_container, RECIPIENTS)
    early = send.emails[10:12]  # unsubscribed before any worker runs
    late = send.emails[300:304]  # unsubscribed while the send is running, their deliveries still queued
    pg_url = pg_container.settings.database_url
    with TestClient(create_app(pg_container), base_url="http://herald.test") as client:
        for email in early:
            _unsubscribe(client, pg_container, send.account, email, _delivery(pg_container, send.send_id, email))
        try:
            # rate=300: the send takes over a second, so the late unsubscribes land mid-send.
            with worker_thread(pg_container, smtp_url=relay.url + "&rate=300", delivery_batch_size=20):
                wait_until(lambda: sum(relay.delivered().values()) >= 60, timeout=30, what="the send to be under way")
                for email in late:
                    d = _delivery(pg_container, send.send_id, email)
                    # Hold the row so no worker claims it until the unsubscribe is committed: it is provably queued.
                    with psycopg.connect(pg_url) as conn:
                        row = conn.execute(
                            "SELECT status FROM deliveries WHERE id = %s FOR NO KEY UPDATE", (d.id,)
                        ).fetchone()
                        assert row == ("queued",), f"{email} was no longer queued: {row}"
                        _unsubscribe(client, pg_container, send.account, email, d)
                mid_send = sum(relay.delivered().values())
                wait_until(
                    lambda: send_status(pg_container, send.send_id) == STATUS_COMPLETED,
                    timeout=60,
                    what="the send to complete",
                )
        finally:
            relay.stop()
    delivered = relay.delivered()
    statuses = delivery_statuses(pg_container, send.send_id)
    unsubscribed = early + late
    print(
        f"\n{len(early)} unsubscribed before the send, {len(late)} during it (after {mid_send} messages); "
        f"mailed afterwards: {sorted(set(unsubscribed) & set(delivered))}; statuses {statuses}"
    )
    assert mid_send < RECIPIENTS - 96, "the send was nearly over before the late unsubscribes: nothing was proved"
    assert not set(unsubscribed) & set(delivered)
    assert sorted(delivered) == sorted(set(send.emails) - set(unsubscribed)) and set(delivered.values()) == {1}
    assert statuses == {"sent": RECIPIENTS - len(unsubscribed), "suppressed": len(unsubscribed)}
    for email in unsubscribed:
        assert _delivery(pg_container, send.send_id, email).error == "not eligible at send time: opted_out"
