"""Native API: single sends (lifecycle, schedule, cancel, pause) and their delivery ledger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from herald.api.deps import ActorDep, SessionDep
from herald.api.pagination import page
from herald.sends.models import Delivery, SingleSend
from herald.sends.schemas import (
    DeliveryOut,
    DeliveryPage,
    ScheduleIn,
    SendIn,
    SendOut,
    SendPage,
    SendPatch,
    send_out,
)
from herald.sends.service import SendService
from herald.sends.stats import stats_for

router = APIRouter(tags=["single sends"])

Limit = Annotated[int, Query(ge=1, le=500)]


def _one(svc: SendService, send: SingleSend) -> SendOut:
    return send_out(send, stats_for(svc.session, [send.id])[send.id])


@router.post("/single-sends", response_model=SendOut, status_code=201, summary="Create a single send")
def create_send(body: SendIn, session: SessionDep, actor: ActorDep) -> SendOut:
    """Create a send; schedule_type 0 queues it now, 1 schedules it, omitted keeps it a draft."""
    svc = SendService(session, actor)
    return _one(svc, svc.create(body))


@router.get("/single-sends", response_model=SendPage, summary="List single sends")
def list_sends(session: SessionDep, actor: ActorDep, limit: Limit = 100, cursor: str | None = None) -> SendPage:
    """The account's sends, oldest first, with their stats (two aggregate queries per page)."""
    svc = SendService(session, actor)
    result = page(
        session,
        svc.repo.live_sends(actor.account_id),
        SingleSend.id,
        limit=limit,
        cursor=cursor,
        render=lambda s: {"send": s},
    )
    sends: list[SingleSend] = [item["send"] for item in result["items"]]
    stats = stats_for(session, [s.id for s in sends])
    return SendPage(items=[send_out(s, stats[s.id]) for s in sends], next_cursor=result["next_cursor"])


@router.get("/single-sends/{send_id}", response_model=SendOut, summary="A single send with its stats")
def get_send(send_id: int, session: SessionDep, actor: ActorDep) -> SendOut:
    """One send; 404 for an unknown id or another account's."""
    svc = SendService(session, actor)
    return _one(svc, svc.get(send_id))


@router.patch("/single-sends/{send_id}", response_model=SendOut, summary="Edit a single send")
def patch_send(send_id: int, body: SendPatch, session: SessionDep, actor: ActorDep) -> SendOut:
    """Change some fields; 409 with current_status once the send runs."""
    svc = SendService(session, actor)
    return _one(svc, svc.update(svc.get(send_id), body))


@router.delete("/single-sends/{send_id}", status_code=204, summary="Delete a single send")
def delete_send(send_id: int, session: SessionDep, actor: ActorDep) -> Response:
    """Soft-delete a send (a running one is cancelled first; its ledger stays)."""
    svc = SendService(session, actor)
    svc.delete(svc.get(send_id))
    return Response(status_code=204)


@router.post("/single-sends/{send_id}/duplicate", response_model=SendOut, status_code=201, summary="Duplicate")
def duplicate_send(send_id: int, session: SessionDep, actor: ActorDep) -> SendOut:
    """A new draft with the same content (never the stats or deliveries)."""
    svc = SendService(session, actor)
    return _one(svc, svc.duplicate(svc.get(send_id)))


@router.post("/single-sends/{send_id}/schedule", response_model=SendOut, summary="Schedule or send now")
def schedule_send(send_id: int, body: ScheduleIn, session: SessionDep, actor: ActorDep) -> SendOut:
    """Make a send ready: schedule_type 0 now, 1 at schedule_date/schedule_time in timezone."""
    svc = SendService(session, actor)
    return _one(svc, svc.schedule(svc.get(send_id), body))


@router.post("/single-sends/{send_id}/cancel", response_model=SendOut, summary="Cancel")
def cancel_send(send_id: int, session: SessionDep, actor: ActorDep) -> SendOut:
    """A ready send goes back to initiate; a running one stops and its unsent mails are withdrawn."""
    svc = SendService(session, actor)
    return _one(svc, svc.cancel(svc.get(send_id)))


@router.post("/single-sends/{send_id}/pause", response_model=SendOut, summary="Pause")
def pause_send(send_id: int, session: SessionDep, actor: ActorDep) -> SendOut:
    """Hold a ready or running send until resumed."""
    svc = SendService(session, actor)
    return _one(svc, svc.pause(svc.get(send_id)))


@router.post("/single-sends/{send_id}/resume", response_model=SendOut, summary="Resume")
def resume_send(send_id: int, session: SessionDep, actor: ActorDep) -> SendOut:
    """Let a paused send continue."""
    svc = SendService(session, actor)
    return _one(svc, svc.resume(svc.get(send_id)))


@router.get("/single-sends/{send_id}/deliveries", response_model=DeliveryPage, summary="Who was (not) sent")
def list_deliveries(
    send_id: int,
    session: SessionDep,
    actor: ActorDep,
    limit: Limit = 100,
    cursor: str | None = None,
    status: str | None = None,
) -> DeliveryPage:
    """The send's recipients with their status, sent time and error (the reason when suppressed)."""
    svc = SendService(session, actor)
    send = svc.get(send_id)
    result = page(
        session,
        svc.repo.deliveries(send.id, status=status),
        Delivery.id,
        limit=limit,
        cursor=cursor,
        render=lambda d: DeliveryOut(
            id=d.id, email=d.email, status=d.status, sent_at=d.sent_at, error=d.error
        ).model_dump(),
    )
    return DeliveryPage.model_validate(result)
