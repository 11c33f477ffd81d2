"""Email messages (opt-in emails among them): list, create, edit until an opt-in rule locks them, delete."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from herald.errors import HeraldError
from herald.templates.models import Message
from herald.templates.service import MessageService
from herald.ui.campaigns.editor import pickers
from herald.ui.campaigns.forms import FormDep
from herald.ui.campaigns.repository import CampaignPagesRepository
from herald.ui.deps import UiContext, UiDep, form_int, form_text, redirect, render, ui_router

router = ui_router()


def _locks(ui: UiContext) -> dict[int, list[Any]]:
    return CampaignPagesRepository(ui.session).rules_using_messages(ui.actor.account_id)


@router.get("/ui/messages", response_class=HTMLResponse)
def message_list(request: Request, ui: UiDep) -> Response:
    """The account's messages with a lock on those an opt-in rule uses, and which rule."""
    svc = MessageService(ui.session, ui.actor)
    messages = ui.session.scalars(svc.messages_query().order_by(Message.id.desc())).all()
    return render(request, "campaigns/messages.html", title="Messages", messages=messages, rules=_locks(ui))


def _form(
    request: Request, ui: UiContext, *, message: Message | None, values: dict[str, Any], error: str | None
) -> Response:
    rules = _locks(ui).get(message.id, []) if message is not None else []
    return render(
        request,
        "campaigns/message_edit.html",
        status_code=422 if error else 200,
        title=f"Message “{message.name}”" if message else "New message",
        message=message,
        values=values,
        senders=pickers(ui.session, ui.actor.account_id).senders,
        rules=rules,
        error=error,
    )


def _values(message: Message | None) -> dict[str, Any]:
    if message is None:
        return {"name": "", "subject": "", "html": "", "text": "", "customoptin": False, "sender_id": None}
    return {k: getattr(message, k) for k in ("name", "subject", "html", "text", "customoptin", "sender_id")}


def _read(form: Any) -> dict[str, Any]:
    html, text = form.get("html"), form.get("text")
    return {
        "name": form_text(form, "name"),
        "subject": form_text(form, "subject"),
        "html": html if isinstance(html, str) else "",
        "text": text if isinstance(text, str) else "",
        "customoptin": form.get("customoptin") == "1",
        "sender_id": form_int(form, "sender_id"),
    }


@router.get("/ui/messages/new", response_class=HTMLResponse)
def new_message(request: Request, ui: UiDep) -> Response:
    """An empty message form."""
    return _form(request, ui, message=None, values=_values(None), error=None)


@router.post("/ui/messages/new", response_class=HTMLResponse)
def create_message(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Create a message; refusals are shown on the form and nothing is saved."""
    values = _read(form)
    try:
        message = MessageService(ui.session, ui.actor).create(
            values["name"],
            values["subject"],
            html=values["html"],
            text=values["text"],
            customoptin=values["customoptin"],
            sender_id=values["sender_id"],
        )
    except HeraldError as exc:
        ui.session.rollback()
        return _form(request, ui, message=None, values=values, error=str(exc))
    return redirect(request, "/ui/messages", flash=f"Created message “{message.name}”.")


@router.get("/ui/messages/{message_id}", response_class=HTMLResponse)
def edit_message(request: Request, message_id: int, ui: UiDep) -> Response:
    """A message's form; a locked one is shown read-only with the rules that lock it."""
    message = MessageService(ui.session, ui.actor).get_message(message_id)
    return _form(request, ui, message=message, values=_values(message), error=None)


@router.post("/ui/messages/{message_id}", response_class=HTMLResponse)
def update_message(request: Request, message_id: int, ui: UiDep, form: FormDep) -> Response:
    """Save a message; a locked one is refused by the service and the refusal shown (nothing changes)."""
    svc = MessageService(ui.session, ui.actor)
    message = svc.get_message(message_id)
    values = _read(form)
    try:
        svc.update(
            message_id,
            name=values["name"],
            subject=values["subject"],
            html=values["html"],
            text=values["text"],
            customoptin=values["customoptin"],
            sender_id=values["sender_id"],
        )
    except HeraldError as exc:
        ui.session.rollback()
        message = svc.get_message(message_id)
        return _form(request, ui, message=message, values=values, error=str(exc))
    return redirect(request, "/ui/messages", flash=f"Saved message “{message.name}”.")


@router.post("/ui/messages/{message_id}/delete", response_class=HTMLResponse)
def delete_message(request: Request, message_id: int, ui: UiDep) -> Response:
    """Soft-delete a message (a rule that uses it keeps sending it)."""
    message = MessageService(ui.session, ui.actor).delete(message_id)
    return redirect(request, "/ui/messages", flash=f"Deleted message “{message.name}”.")
