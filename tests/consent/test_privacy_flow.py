"""The whole story through the real edges: a person is created, mailed, bounces, is erased, comes back, is never
mailed again, and no table holds anything about them in between."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from herald.container import Container
from herald.sends.models import Delivery, SingleSend
from herald.settings import Settings
from herald.worker import Worker
from tests.conftest import auth
from tests.consent.privacy_factory import address_status, scan

EMAIL = "yolanda.x@example.net"
UA = {"User-Agent": "YolandaPhone/3.2"}


def _launch_and_send(container: Container, send_id: int) -> None:
    """Run a real worker loop until the send is launched and completed."""
    from herald.sends import pipeline

    def done() -> bool:
        with container.sessions() as s:
            return s.scalar(select(SingleSend.status).where(SingleSend.id == send_id)) == 3

    async def run() -> None:
        worker = Worker(container, name="privacy-flow")
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 60
        try:
            while not await asyncio.to_thread(done):
                assert time.monotonic() < deadline, "the send did not complete in time"
                await asyncio.sleep(0.05)
        finally:
            worker.stop()
            await task
            await pipeline.close(worker)

    asyncio.run(run())


def _create_send(container: Container, account_id: int, type_id: int, w: Any) -> int:
    from herald.sends.service import SendService
    from tests.sends.factory import actor, send_in

    with container.transaction() as s:
        return (
            SendService(s, actor(account_id))
            .create(send_in(w, schedule_type=0, recipient_id=[f"contacts_{type_id}"]))
            .id
        )


def test_bounced_person_erased_then_recreated_is_never_mailed_again(
    client: TestClient,
    container: Container,
    smtp_settings: Settings,
    smtp_sink: Any,
    account: dict[str, Any],
) -> None:
    from tests.sends.factory import world

    aid = account["account_id"]
    h = {**auth(account), **UA}
    with container.transaction() as s:
        w = world(s, aid)
    contact = {"email": EMAIL, "first_name": "Yolanda", "city": "Quibbleton", "contact_type_id": w.type_id}
    r = client.post("/api/v1/contacts", json={**contact, "fields": {"shoe": "Xylophant-42"}}, headers=h)
    assert r.status_code == 201, r.text
    r = client.put(
        f"/api/v1/addresses/{EMAIL}/status", json={"status": "opted_in", "reason": "Yolanda said yes"}, headers=h
    )
    assert r.status_code == 200, r.text

    # Mailed once; the relay refuses it for good, naming the address in its reply.
    smtp_sink.handler.refuse[EMAIL] = f"550 5.1.1 <{EMAIL}>: Yolanda's mailbox is gone"
    worker_container = dataclasses.replace(container, settings=smtp_settings)
    first = _create_send(container, aid, w.type_id, w)
    _launch_and_send(worker_container, first)
    with container.transaction() as s:
        (delivery,) = s.scalars(select(Delivery).where(Delivery.send_id == first)).all()
        assert delivery.status == "bounced" and EMAIL in (delivery.error or "")
    assert address_status(container, aid, EMAIL) == "bounced"
    # A list subscription too (an active one: a bounced address cannot be asked to confirm).
    lst = client.post("/api/v1/lists", json={"name": "Digest"}, headers=h).json()
    with container.transaction() as s:
        from herald.consent.models import Address
        from herald.lists.models import Subscription

        addr = s.scalars(select(Address).where(Address.email == EMAIL)).one()
        s.add(Subscription(account_id=aid, list_id=lst["id"], address_id=addr.id, status="active"))

    needles = [EMAIL, "Yolanda", "Quibbleton", "Xylophant-42", UA["User-Agent"]]
    held = {hit.split(" ")[0] for hit in scan(container, needles)}
    assert {"contacts.fields", "consent_events.user_agent", "deliveries.error", "delivery_events.detail"} <= held
    r = client.delete(f"/api/v1/addresses/{EMAIL}", headers=h)
    assert r.status_code == 200 and r.json()["suppressed"] == "bounced"
    assert scan(container, needles) == []

    # Back through the native API; the next send records it as suppressed and the relay sees nothing.
    r = client.post("/api/v1/contacts", json=contact, headers=auth(account))
    assert r.status_code == 201, r.text
    assert address_status(container, aid, EMAIL) == "bounced"
    smtp_sink.handler.refuse.clear()
    second = _create_send(container, aid, w.type_id, w)
    _launch_and_send(worker_container, second)
    with container.transaction() as s:
        rows = s.execute(select(Delivery.email, Delivery.status).where(Delivery.send_id == second)).all()
        assert [(str(e), st) for e, st in rows] == [(EMAIL, "suppressed")]
    assert smtp_sink.to(EMAIL) == []
