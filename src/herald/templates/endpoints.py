"""Native API: senders, design templates and email messages."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from herald.api.deps import ActorDep, SessionDep
from herald.api.pagination import page
from herald.errors import Invalid
from herald.templates.models import Message, Sender, Template
from herald.templates.schemas import (
    MessageIn,
    MessageOut,
    MessagePage,
    MessagePatch,
    SenderIn,
    SenderOut,
    SenderPage,
    TemplateIn,
    TemplateOut,
    TemplatePage,
)
from herald.templates.service import MessageService, SenderService, TemplateService

router = APIRouter()

Limit = Annotated[int, Query()]
Cursor = Annotated[str | None, Query()]


def _sender_out(s: Sender) -> dict[str, Any]:
    return SenderOut.model_validate(s, from_attributes=True).model_dump()


def _template_out(t: Template) -> dict[str, Any]:
    return TemplateOut(
        id=t.id,
        name=t.name,
        preview_image=t.preview_image,
        html=t.html,
        design=t.json,
        is_blank=t.is_blank,
        builtin=t.account_id is None,
        created_at=t.created_at,
    ).model_dump(by_alias=True)


def _message_out(m: Message) -> dict[str, Any]:
    return MessageOut.model_validate(m, from_attributes=True).model_dump()


# -- senders ------------------------------------------------------------------------------------
@router.post("/senders", response_model=SenderOut, status_code=201, tags=["senders"], summary="Create a sender")
def create_sender(body: SenderIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """A From identity with its reply-to and postal address."""
    svc = SenderService(session, actor)
    return _sender_out(
        svc.create(body.from_email, from_name=body.from_name, reply_to=body.reply_to, address=body.address)
    )


@router.get("/senders", response_model=SenderPage, tags=["senders"], summary="List senders")
def list_senders(session: SessionDep, actor: ActorDep, limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """The account's senders by id."""
    svc = SenderService(session, actor)
    return page(session, svc.senders_query(), Sender.id, limit=limit, cursor=cursor, render=_sender_out)


# -- templates ----------------------------------------------------------------------------------
@router.post("/templates", response_model=TemplateOut, status_code=201, tags=["templates"], summary="Create a template")
def create_template(body: TemplateIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """A design template of the account."""
    design = body.design
    if design is None:
        text = "{}"
    elif isinstance(design, str):
        text = design
    else:
        text = json.dumps(design)
    if len(text) > 4 * 1024 * 1024:
        raise Invalid("json", "is too large")
    return _template_out(TemplateService(session, actor).create(body.name, html=body.html, json=text))


@router.get("/templates", response_model=TemplatePage, tags=["templates"], summary="List templates")
def list_templates(session: SessionDep, actor: ActorDep, limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """The built-in templates (no account) followed by the account's own."""
    svc = TemplateService(session, actor)
    return page(session, svc.templates_query(), Template.id, limit=limit, cursor=cursor, render=_template_out)


# -- messages -----------------------------------------------------------------------------------
@router.post("/messages", response_model=MessageOut, status_code=201, tags=["messages"], summary="Create a message")
def create_message(body: MessageIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """An email message; `customoptin` ones can be used by opt-in rules."""
    svc = MessageService(session, actor)
    return _message_out(
        svc.create(
            body.name,
            body.subject,
            html=body.html,
            text=body.text,
            customoptin=body.customoptin,
            sender_id=body.sender_id,
            category_id=body.category_id,
        )
    )


@router.get("/messages", response_model=MessagePage, tags=["messages"], summary="List messages")
def list_messages(session: SessionDep, actor: ActorDep, limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """The account's messages that are not deleted, by id."""
    svc = MessageService(session, actor)
    return page(session, svc.messages_query(), Message.id, limit=limit, cursor=cursor, render=_message_out)


@router.patch("/messages/{message_id}", response_model=MessageOut, tags=["messages"], summary="Edit a message")
def update_message(message_id: int, body: MessagePatch, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Change the given fields; 409 (current_status "locked") once an opt-in rule uses the message."""
    for field in body.model_fields_set:
        if getattr(body, field) is None:
            raise Invalid(field, "must not be null")
    svc = MessageService(session, actor)
    return _message_out(
        svc.update(
            message_id,
            name=body.name,
            subject=body.subject,
            html=body.html,
            text=body.text,
            customoptin=body.customoptin,
            sender_id=body.sender_id,
            category_id=body.category_id,
        )
    )


@router.delete("/messages/{message_id}", status_code=204, tags=["messages"], summary="Delete a message")
def delete_message(message_id: int, session: SessionDep, actor: ActorDep) -> Response:
    """Soft delete: gone from lists, but an opt-in rule that uses it keeps sending it."""
    MessageService(session, actor).delete(message_id)
    return Response(status_code=204)
