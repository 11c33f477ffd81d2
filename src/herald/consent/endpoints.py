"""Native API: addresses (consent state, its change, the ledger) and topics."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Query

from herald.api.deps import ActorDep, ContainerDep, SessionDep
from herald.api.pagination import check_limit, decode_cursor, encode_cursor, page
from herald.consent.models import Address, ConsentEvent, Topic
from herald.consent.schemas import (
    AddressList,
    AddressOut,
    AddressTopic,
    EventOut,
    EventPage,
    StatusChange,
    TopicIn,
    TopicOut,
    TopicPage,
)
from herald.consent.service import ConsentService

router = APIRouter(tags=["addresses", "topics"])


def _address_out(svc: ConsentService, addr: Address) -> AddressOut:
    status = svc.effective_status(addr)
    return AddressOut(
        email=addr.email,
        status=status,
        opted_out_until=addr.opted_out_until if status == "opted_out" else None,
        topics=[AddressTopic(id=t.id, name=t.name, unsubscribed=t.unsubscribed) for t in svc.topic_states(addr)],
        lists=[AddressList(id=i, name=n, status=s) for i, n, s in svc.repo.address_lists(addr.id)],
    )


def _until(value: datetime | date | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


@router.get("/addresses/{email}", response_model=AddressOut, summary="Consent state of an address")
def get_address(email: str, session: SessionDep, actor: ActorDep, container: ContainerDep) -> AddressOut:
    """The address's status, temporary opt-out end, topics and lists; 404 if the account never saw it."""
    svc = ConsentService(session, actor, hash_key=container.hash_key)
    return _address_out(svc, svc.get(email))


@router.put("/addresses/{email}/status", response_model=AddressOut, summary="Change consent")
def put_status(
    email: str, body: StatusChange, session: SessionDep, actor: ActorDep, container: ContainerDep
) -> AddressOut:
    """Apply one consent transition (or, with topic_id, one topic change) under the state machine's rules."""
    svc = ConsentService(session, actor, hash_key=container.hash_key)
    if body.topic_id is not None:
        addr = svc.get(email)
        if body.status == "opted_out":
            svc.unsubscribe_topic(addr, body.topic_id, reason=body.reason)
        elif body.status == "opted_in":
            svc.resubscribe_topic(addr, body.topic_id, reason=body.reason)
        else:
            from herald.errors import Invalid

            raise Invalid("status", "with topic_id, status must be opted_out or opted_in")
    else:
        addr = svc.set_status(email, body.status, until=_until(body.until), reason=body.reason, create=True)
    return _address_out(svc, addr)


@router.get("/addresses/{email}/events", response_model=EventPage, summary="The consent ledger of an address")
def get_events(
    email: str,
    session: SessionDep,
    actor: ActorDep,
    container: ContainerDep,
    limit: Annotated[int, Query()] = 100,
    cursor: Annotated[str | None, Query()] = None,
) -> EventPage:
    """Every change of the address, oldest first: status, list-subscription and topic changes."""
    svc = ConsentService(session, actor, hash_key=container.hash_key)
    addr = svc.get(email)
    limit = check_limit(limit)
    rows = list(svc.events(addr, after_id=decode_cursor(cursor), limit=limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        items=[_event_out(e) for e in rows],
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
    )


def _event_out(e: ConsentEvent) -> EventOut:
    return EventOut(
        id=e.id,
        at=e.at,
        source=e.source,
        credential=e.credential_id,
        from_status=e.from_status,
        to_status=e.to_status,
        list_id=e.list_id,
        topic_id=e.topic_id,
        reason=e.reason,
        ip=e.ip,
    )


def _topic_out(t: Topic) -> dict[str, object]:
    return TopicOut(id=t.id, name=t.name, description=t.description, enabled=t.enabled).model_dump()


@router.post("/topics", response_model=TopicOut, status_code=201, summary="Create a topic")
def create_topic(body: TopicIn, session: SessionDep, actor: ActorDep) -> TopicOut:
    """A topic (unsubscribe group) addresses can leave on their own."""
    svc = ConsentService(session, actor)
    topic = svc.create_topic(body.name, description=body.description, enabled=body.enabled)
    return TopicOut(id=topic.id, name=topic.name, description=topic.description, enabled=topic.enabled)


@router.get("/topics", response_model=TopicPage, summary="List topics")
def list_topics(
    session: SessionDep,
    actor: ActorDep,
    limit: Annotated[int, Query()] = 100,
    cursor: Annotated[str | None, Query()] = None,
) -> dict[str, object]:
    """The account's topics by id."""
    svc = ConsentService(session, actor)
    return page(
        session, svc.repo.topics_query(actor.account_id), Topic.id, limit=limit, cursor=cursor, render=_topic_out
    )
