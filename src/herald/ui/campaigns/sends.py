"""Single-send pages: the list, the editor (pickers, live preview, eligible count), actions and a send's page."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from herald.contacts.models import Contact
from herald.errors import HeraldError, Invalid
from herald.sends.audience import target_conditions
from herald.sends.models import STATUS_COMPLETED, STATUS_INITIATE, STATUS_READY, STATUS_RUNNING, SingleSend
from herald.sends.repository import SendRepository
from herald.sends.schemas import ScheduleIn
from herald.sends.service import SendService, parse_targets
from herald.sends.stats import NOT_TRIGGERED, stats_for
from herald.ui.campaigns import editor
from herald.ui.campaigns.forms import FormDep
from herald.ui.campaigns.preview import render_preview
from herald.ui.campaigns.repository import CampaignPagesRepository
from herald.ui.deps import UiContext, UiDep, redirect, render, ui_router

router = ui_router()
PAGE_SIZE = 50
DELIVERY_STATUSES = ("queued", "sending", "sent", "failed", "bounced", "suppressed", "cancelled")


def status_label(send: SingleSend) -> str:
    """The status a person reads: draft, scheduled, sending, completed or cancelled (and paused)."""
    if send.status == STATUS_INITIATE:
        label = "cancelled draft" if send.cancelled else "draft"
    elif send.status == STATUS_READY:
        label = "scheduled" if send.schedule_type == 1 else "starting"
    elif send.status == STATUS_RUNNING:
        label = "sending"
    else:
        label = "cancelled" if send.cancelled else "completed"
    return f"{label} (paused)" if send.paused else label


def _progress(ui: UiContext, send: SingleSend) -> dict[str, Any]:
    counts = SendRepository(ui.session).count_by_status(send.id)
    total = sum(n for status, n in counts.items() if status not in NOT_TRIGGERED)
    done = sum(counts.get(s, 0) for s in ("sent", "failed", "bounced"))
    return {
        "counts": counts,
        "total": total,
        "done": done,
        "percent": int(100 * done / total) if total else (100 if send.status == STATUS_COMPLETED else 0),
    }


@router.get("/ui/sends", response_class=HTMLResponse)
def send_list(request: Request, ui: UiDep) -> Response:
    """Every send of the account, newest first, with its status and headline counts."""
    sends = list(reversed(SendService(ui.session, ui.actor).all()))
    stats = stats_for(ui.session, [s.id for s in sends])
    rows = [{"send": s, "label": status_label(s), "stats": stats[s.id]} for s in sends]
    return render(request, "campaigns/sends.html", title="Single sends", rows=rows)


def _editor_page(
    request: Request, ui: UiContext, *, send: SingleSend | None, values: dict[str, Any], error: str | None = None
) -> Response:
    return render(
        request,
        "campaigns/send_edit.html",
        status_code=422 if error else 200,
        title=f"Edit {send.name}" if send else "New single send",
        send=send,
        values=values,
        pickers=editor.pickers(ui.session, ui.actor.account_id),
        error=error,
    )


def _form_values(fields: dict[str, Any], form: Any) -> dict[str, Any]:
    values = dict(fields)
    values["when"] = form.get("when") or "draft"
    values["template_html"] = fields.get("template_html") or ""
    return values


@router.get("/ui/sends/new", response_class=HTMLResponse)
def new_send(request: Request, ui: UiDep) -> Response:
    """An empty editor."""
    return _editor_page(request, ui, send=None, values=editor.form_values(None))


@router.post("/ui/sends/new", response_class=HTMLResponse)
def create_send(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Create the send (a draft, ready now, or scheduled); refusals are shown on the editor, nothing saved."""
    try:
        fields = editor.read_form(form)
        send = SendService(ui.session, ui.actor).create(editor.as_send_in(fields))
    except HeraldError as exc:
        ui.session.rollback()
        return _editor_page(request, ui, send=None, values=_form_values(_safe_fields(form), form), error=str(exc))
    return redirect(request, f"/ui/sends/{send.id}", flash=f"Saved “{send.name}” ({status_label(send)}).")


def _safe_fields(form: Any) -> dict[str, Any]:
    """The form's values for redisplay, even when a number field is garbage."""
    try:
        return editor.read_form(form)
    except Invalid:
        return {k: form.get(k) for k in form} | {
            "recipient_id": form.getlist("recipient_id"),
            "exclude_specific_recipient_id": form.getlist("exclude_specific_recipient_id"),
        }


@router.get("/ui/sends/{send_id}/edit", response_class=HTMLResponse)
def edit_send(request: Request, send_id: int, ui: UiDep) -> Response:
    """The editor for a draft or scheduled send (a running or finished one cannot change)."""
    send = SendService(ui.session, ui.actor).get(send_id)
    if send.status not in (STATUS_INITIATE, STATUS_READY):
        return redirect(
            request, f"/ui/sends/{send.id}", flash="A send that has started cannot be edited.", level="error"
        )
    return _editor_page(request, ui, send=send, values=editor.form_values(send))


@router.post("/ui/sends/{send_id}/edit", response_class=HTMLResponse)
def update_send(request: Request, send_id: int, ui: UiDep, form: FormDep) -> Response:
    """Save the editor; the service refuses a send that has started, and the refusal is shown."""
    svc = SendService(ui.session, ui.actor)
    send = svc.get(send_id)
    try:
        fields = editor.read_form(form)
        send = svc.update(send, editor.as_patch(fields))
    except HeraldError as exc:
        ui.session.rollback()
        send = svc.get(send_id)
        return _editor_page(request, ui, send=send, values=_form_values(_safe_fields(form), form), error=str(exc))
    return redirect(request, f"/ui/sends/{send.id}", flash=f"Saved “{send.name}” ({status_label(send)}).")


@router.post("/ui/sends/preview", response_class=HTMLResponse)
def preview(request: Request, ui: UiDep, form: FormDep) -> Response:
    """The editor's live pane: the message as the pipeline renders it for a sample contact, plus the eligible count.

    One request refreshes both (the count as an out-of-band swap), so typing never races two requests.
    """
    repo = SendRepository(ui.session)
    aid = ui.actor.account_id
    try:
        fields = editor.read_form(form)
    except Invalid as exc:
        audience = editor.Audience(0, 0, {}, error=str(exc))
        return render(request, "campaigns/_preview.html", preview=None, error=str(exc), audience=audience)
    audience = editor.eligible_count(ui.session, ui.actor, fields)
    html = fields["template_html"]
    if html is None:
        template = repo.template(aid, fields["template_id"])
        html = template.html if template is not None and not template.is_blank else ""
    sender = repo.sender(aid, fields["sender_id"]) if fields["sender_id"] is not None else None
    try:
        result = render_preview(
            ui.container,
            subject=fields["subject"],
            preheader=fields["preheader"],
            html=html,
            sender=sender,
            sample=_sample_contact(ui, fields),
        )
    except HeraldError as exc:
        return render(request, "campaigns/_preview.html", preview=None, error=str(exc), audience=audience)
    return render(request, "campaigns/_preview.html", preview=result, error=None, audience=audience)


def _sample_contact(ui: UiContext, fields: dict[str, Any]) -> Contact | None:
    """The first contact the targets reach, else the account's first contact, else none (a made-up one)."""
    pages = CampaignPagesRepository(ui.session)
    aid = ui.actor.account_id
    try:
        targets = parse_targets(fields.get("recipient_id") or [], field="recipient_id")
        if targets:
            contact = pages.sample_contact(aid, target_conditions(ui.session, aid, targets))
            if contact is not None:
                return contact
    except HeraldError:
        pass  # a bad target is reported by the count; the preview still renders
    return pages.sample_contact(aid)


@router.post("/ui/sends/count", response_class=HTMLResponse)
def count(request: Request, ui: UiDep, form: FormDep) -> Response:
    """The eligible count of the editor's targets, by the consent rule (an htmx fragment)."""
    try:
        fields = editor.read_form(form)
    except Invalid as exc:
        return render(request, "campaigns/_count.html", audience=editor.Audience(0, 0, {}, error=str(exc)))
    return render(request, "campaigns/_count.html", audience=editor.eligible_count(ui.session, ui.actor, fields))


@router.get("/ui/sends/{send_id}", response_class=HTMLResponse)
def send_page(request: Request, send_id: int, ui: UiDep, status: str = "", page: int = 1) -> Response:
    """A send: its settings, actions, live progress while running, then stats and recipients."""
    send = SendService(ui.session, ui.actor).get(send_id)
    repo = SendRepository(ui.session)
    page = max(page, 1)
    status = status if status in DELIVERY_STATUSES else ""
    deliveries, total = CampaignPagesRepository(ui.session).deliveries_page(
        ui.actor.account_id, send.id, status=status or None, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    aid = ui.actor.account_id
    return render(
        request,
        "campaigns/send.html",
        title=send.name,
        send=send,
        label=status_label(send),
        live=is_live(send),
        stats=stats_for(ui.session, [send.id])[send.id],
        progress=_progress(ui, send),
        deliveries=deliveries,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        status_filter=status,
        statuses=DELIVERY_STATUSES,
        sender=repo.sender(aid, send.sender_id) if send.sender_id else None,
        design=repo.template(aid, send.template_id) if send.template_id else None,
        topic=repo.topic(aid, send.topic_id) if send.topic_id else None,
        mailing_list=repo.mailing_list(aid, send.list_id) if send.list_id else None,
        targets=_target_names(ui, send.recipients),
        exclusions=_target_names(ui, send.exclusions),
        audience=editor.eligible_count(ui.session, ui.actor, editor.form_values(send))
        if send.status in (STATUS_INITIATE, STATUS_READY)
        else None,
    )


def _target_names(ui: UiContext, targets: list[dict[str, Any]] | None) -> list[str]:
    pk = editor.pickers(ui.session, ui.actor.account_id)
    names = {f"contacts_{t.id}": f"Contact type “{t.name}”" for t in pk.contact_types}
    names |= {f"segments_{s.id}": f"Segment “{s.name}”" for s in pk.segments}
    return [names.get(f"{t['table']}{t['id']}", f"{t['table']}{t['id']} (deleted)") for t in targets or []]


def is_live(send: SingleSend) -> bool:
    """Whether the send's page should poll: it is sending, or about to start sending."""
    starting = send.status == STATUS_READY and send.schedule_type == 0 and not send.paused
    return send.status == STATUS_RUNNING or starting


@router.get("/ui/sends/{send_id}/progress", response_class=HTMLResponse)
def progress(request: Request, send_id: int, ui: UiDep, seen: int | None = None) -> Response:
    """The progress fragment htmx polls; once the status differs from the page's (`seen`) the page reloads."""
    send = SendService(ui.session, ui.actor).get(send_id)
    response = render(request, "campaigns/_progress.html", send=send, progress=_progress(ui, send), live=is_live(send))
    if seen is not None and send.status != seen:
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/ui/sends/{send_id}/{action}", response_class=HTMLResponse)
def act(request: Request, send_id: int, action: str, ui: UiDep) -> Response:
    """Send now, cancel, pause, resume, duplicate or delete; a refusal is shown on the send's page."""
    svc = SendService(ui.session, ui.actor)
    send = svc.get(send_id)
    target = f"/ui/sends/{send.id}"
    try:
        if action == "send-now":
            svc.schedule(send, ScheduleIn(schedule_type=0))
            message = "Sending: the worker starts within a few seconds."
        elif action == "cancel":
            svc.cancel(send)
            message = "Cancelled."
        elif action == "pause":
            svc.pause(send)
            message = "Paused."
        elif action == "resume":
            svc.resume(send)
            message = "Resumed."
        elif action == "duplicate":
            copy = svc.duplicate(send)
            return redirect(request, f"/ui/sends/{copy.id}/edit", flash=f"Duplicated as a new draft of “{copy.name}”.")
        elif action == "delete":
            svc.delete(send)
            return redirect(request, "/ui/sends", flash=f"Deleted “{send.name}”.")
        else:
            raise Invalid("action", f"unknown action {action!r}")
    except HeraldError as exc:
        ui.session.rollback()
        return redirect(request, target, flash=f"Refused: {exc}", level="error")
    return redirect(request, target, flash=message)
