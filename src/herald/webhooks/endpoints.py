"""Native API: webhooks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from herald.api.deps import ActorDep, ContainerDep, SessionDep
from herald.api.pagination import page
from herald.webhooks.models import Webhook
from herald.webhooks.schemas import WebhookIn, WebhookOut, WebhookPage
from herald.webhooks.service import WebhookService

router = APIRouter(tags=["webhooks"])


def _webhook_out(h: Webhook) -> dict[str, Any]:
    return WebhookOut(
        id=h.id,
        url=h.url,
        events=list(h.events or []),
        format=h.format,
        has_secret=h.secret_enc is not None,
        created_at=h.created_at,
    ).model_dump()


@router.post("/webhooks", response_model=WebhookOut, status_code=201, summary="Create a webhook")
def create_webhook(body: WebhookIn, session: SessionDep, actor: ActorDep, container: ContainerDep) -> dict[str, Any]:
    """Send the chosen account events to a URL, as signed JSON or as Skycore XML postbacks."""
    svc = WebhookService(session, actor, cipher=container.cipher)
    return _webhook_out(svc.create(body.url, events=body.events, secret=body.secret, format=body.format))


@router.get("/webhooks", response_model=WebhookPage, summary="List webhooks")
def list_webhooks(
    session: SessionDep,
    actor: ActorDep,
    limit: Annotated[int, Query()] = 100,
    cursor: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The account's webhooks by id."""
    svc = WebhookService(session, actor)
    return page(session, svc.webhooks_query(), Webhook.id, limit=limit, cursor=cursor, render=_webhook_out)


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook")
def delete_webhook(webhook_id: int, session: SessionDep, actor: ActorDep) -> Response:
    """Stop sending events to a webhook."""
    WebhookService(session, actor).delete(webhook_id)
    return Response(status_code=204)
