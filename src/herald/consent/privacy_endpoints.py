"""Native API: export everything held about an address, and erase it (keeping a keyed-hash suppression)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from herald.api.deps import ActorDep, ContainerDep, SessionDep
from herald.consent.privacy import PrivacyService

router = APIRouter(tags=["addresses"])


class ErasureOut(BaseModel):
    """`DELETE /addresses/{email}`: what was erased and which suppression was kept."""

    email: str
    erased: bool
    suppressed: str | None
    contact_removed: bool
    deliveries_scrubbed: int
    ledger_events_anonymised: int


@router.get("/addresses/{email}/export", summary="Everything held about an address (GDPR art. 15)")
def export_address(email: str, session: SessionDep, actor: ActorDep, container: ContainerDep) -> dict[str, Any]:
    """One JSON document: address, contact, subscriptions, topics, ledger, deliveries, opt-ins, inbound mail."""
    return PrivacyService(session, actor, hash_key=container.hash_key).export(email)


@router.delete("/addresses/{email}", response_model=ErasureOut, summary="Erase an address (GDPR art. 17)")
def erase_address(email: str, session: SessionDep, actor: ActorDep, container: ContainerDep) -> ErasureOut:
    """Remove the address's personal data everywhere; an opted-out, bounced or spam-reported one stays suppressed."""
    result = PrivacyService(session, actor, hash_key=container.hash_key).erase(email)
    return ErasureOut(
        email=result.email,
        erased=True,
        suppressed=result.suppressed,
        contact_removed=result.contact_removed,
        deliveries_scrubbed=result.deliveries_scrubbed,
        ledger_events_anonymised=result.ledger_events_anonymised,
    )
