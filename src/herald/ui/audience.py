"""Lists, categories, topics, segments (rule builder with live count), senders and webhooks."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from herald.consent.repository import ConsentRepository
from herald.consent.service import ConsentService
from herald.contacts.models import CONTACT_FIELDS
from herald.contacts.segments import OPS, compile_rules, validate_rules
from herald.contacts.service import ContactService
from herald.errors import Conflict, HeraldError, Invalid, NotAllowed
from herald.lists.service import ACTIVE, SUBSCRIBABLE, ListService
from herald.templates.service import SenderService
from herald.ui.deps import FormDep, UiContext, UiDep, form_int, form_text, redirect, render, ui_router
from herald.ui.repository import UiRepository
from herald.webhooks.outbox import EVENTS
from herald.webhooks.service import FORMATS, WebhookService

router = ui_router()
MAX_ROWS = 500
PAGE_SIZE = 100
SEGMENT_FIELDS = ("email", *CONTACT_FIELDS, "contact_type_id")


def _problem(exc: HeraldError) -> str:
    """A refusal as one sentence next to the form that caused it."""
    if isinstance(exc, Invalid):
        return f"{exc.field.replace('_', ' ')}: {exc.reason}"
    return exc.message


# -- lists ----------------------------------------------------------------------------------------
def _lists_page(request: Request, ui: UiContext, *, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    service = ListService(ui.session, ui.actor, hash_key=ui.container.hash_key)
    lists = ui.session.scalars(service.lists_query().limit(MAX_ROWS)).all()
    categories = ui.session.scalars(service.categories_query().limit(MAX_ROWS)).all()
    return render(
        request,
        "lists.html",
        status_code=status_code,
        title="Lists",
        lists=lists,
        categories={c.id: c.name for c in categories},
        counts=UiRepository(ui.session, ui.account.id).list_counts(),
        error=error,
    )


@router.get("/ui/lists", response_class=HTMLResponse)
def lists(request: Request, ui: UiDep) -> HTMLResponse:
    """Every list with its subscriber counts, and a form to create one."""
    return _lists_page(request, ui)


@router.post("/ui/lists")
def create_list(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Create a list."""
    service = ListService(ui.session, ui.actor, hash_key=ui.container.hash_key)
    try:
        created = service.create_list(
            form_text(form, "name"),
            category_id=form_int(form, "category_id"),
            double_opt_in=bool(form.get("double_opt_in")),
        )
    except (Invalid, Conflict, NotAllowed) as exc:
        ui.session.rollback()
        return _lists_page(request, ui, error=_problem(exc), status_code=422)
    return redirect(request, f"/ui/lists/{created.id}", flash=f"List “{created.name}” created.")


def _list_page(
    request: Request, ui: UiContext, list_id: int, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    service = ListService(ui.session, ui.actor, hash_key=ui.container.hash_key)
    mailing_list = service.get_list(list_id)
    after = request.query_params.get("after", "0")
    after_id = int(after) if after.isdigit() and len(after) < 12 else 0
    status = request.query_params.get("status") or None
    if status not in (None, "active", "unconfirmed", "unsubscribed"):
        status = None
    rows = service.subscriptions(list_id, status=status, after_id=after_id, limit=PAGE_SIZE + 1)
    return render(
        request,
        "list.html",
        status_code=status_code,
        title=mailing_list.name,
        mailing_list=mailing_list,
        rows=rows[:PAGE_SIZE],
        next_after=rows[PAGE_SIZE - 1][0].id if len(rows) > PAGE_SIZE else None,
        status=status,
        counts=UiRepository(ui.session, ui.account.id).list_counts().get(list_id, {}),
        subscribable=SUBSCRIBABLE,
        error=error,
    )


@router.get("/ui/lists/{list_id}", response_class=HTMLResponse)
def list_page(request: Request, list_id: int, ui: UiDep) -> HTMLResponse:
    """A list's subscribers, with a form to add one."""
    return _list_page(request, ui, list_id)


@router.post("/ui/lists/{list_id}/subscribers")
def add_subscriber(request: Request, list_id: int, ui: UiDep, form: FormDep) -> Response:
    """Subscribe an address (refused for suppressed addresses, as through the API)."""
    email = form_text(form, "email")
    status = form_text(form, "status") or ACTIVE
    service = ListService(ui.session, ui.actor, hash_key=ui.container.hash_key)
    service.get_list(list_id)
    try:
        service.subscribe(
            list_id, email, status=status, reason=form_text(form, "reason")[:1000] or "added in the admin UI"
        )
    except (Invalid, NotAllowed, Conflict) as exc:
        ui.session.rollback()
        message = _problem(exc)
        if isinstance(exc, NotAllowed):
            message = f"Refused: {email} cannot be subscribed ({exc.current_status})."
        return _list_page(request, ui, list_id, error=message, status_code=409 if isinstance(exc, NotAllowed) else 422)
    return redirect(request, f"/ui/lists/{list_id}", flash=f"{email.strip().lower()} added ({status}).")


# -- categories and topics ---------------------------------------------------------------------------
def _categories_page(
    request: Request, ui: UiContext, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    service = ListService(ui.session, ui.actor)
    items = ui.session.scalars(service.categories_query().limit(MAX_ROWS)).all()
    return render(request, "categories.html", status_code=status_code, title="Categories", items=items, error=error)


@router.get("/ui/categories", response_class=HTMLResponse)
def categories(request: Request, ui: UiDep) -> HTMLResponse:
    """Categories (folders) that group lists."""
    return _categories_page(request, ui)


@router.post("/ui/categories")
def create_category(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Create a category."""
    try:
        category = ListService(ui.session, ui.actor).create_category(form_text(form, "name"))
    except (Invalid, Conflict) as exc:
        ui.session.rollback()
        return _categories_page(request, ui, error=_problem(exc), status_code=422)
    return redirect(request, "/ui/categories", flash=f"Category “{category.name}” created.")


def _topics_page(request: Request, ui: UiContext, *, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    items = ConsentRepository(ui.session).topics(ui.account.id)
    return render(request, "topics.html", status_code=status_code, title="Topics", items=items, error=error)


@router.get("/ui/topics", response_class=HTMLResponse)
def topics(request: Request, ui: UiDep) -> HTMLResponse:
    """Topics an address can unsubscribe from on its own."""
    return _topics_page(request, ui)


@router.post("/ui/topics")
def create_topic(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Create a topic."""
    consent = ConsentService(ui.session, ui.actor, hash_key=ui.container.hash_key)
    try:
        topic = consent.create_topic(
            form_text(form, "name"), description=form_text(form, "description"), enabled=bool(form.get("enabled"))
        )
    except (Invalid, Conflict) as exc:
        ui.session.rollback()
        return _topics_page(request, ui, error=_problem(exc), status_code=422)
    return redirect(request, "/ui/topics", flash=f"Topic “{topic.name}” created.")


# -- segments ---------------------------------------------------------------------------------------
def _segments_page(
    request: Request,
    ui: UiContext,
    *,
    error: str | None = None,
    status_code: int = 200,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    service = ContactService(ui.session, ui.actor)
    items = ui.session.scalars(service.segments_query().limit(MAX_ROWS)).all()
    return render(
        request,
        "segments.html",
        status_code=status_code,
        title="Segments",
        items=items,
        error=error,
        fields=SEGMENT_FIELDS,
        ops=OPS,
        form=form or {},
    )


@router.get("/ui/segments", response_class=HTMLResponse)
def segments(request: Request, ui: UiDep) -> HTMLResponse:
    """Segments, and a rule builder for a new one."""
    return _segments_page(request, ui)


def _rules(text: str) -> dict[str, Any]:
    try:
        rules = json.loads(text)
    except ValueError:
        raise Invalid("rules", "are not valid JSON") from None
    if not isinstance(rules, dict):
        raise Invalid("rules", "must be an object")
    validate_rules(rules)
    return rules


@router.post("/ui/segments/count", response_class=HTMLResponse)
def segment_count(request: Request, ui: UiDep, form: FormDep) -> HTMLResponse:
    """How many contacts the rules being built match right now (an htmx fragment)."""
    try:
        rules = _rules(form_text(form, "rules"))
        count: int | None = UiRepository(ui.session, ui.account.id).count_contacts(compile_rules(rules))
        error = None
    except Invalid as exc:
        count, error = None, _problem(exc)
    return render(request, "_segment_count.html", count=count, error=error)


@router.post("/ui/segments")
def create_segment(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Save a segment from the builder's DSL JSON."""
    name, text = form_text(form, "name"), form_text(form, "rules")
    try:
        segment = ContactService(ui.session, ui.actor).create_segment(name, _rules(text))
    except (Invalid, Conflict) as exc:
        ui.session.rollback()
        return _segments_page(request, ui, error=_problem(exc), status_code=422, form={"name": name, "rules": text})
    return redirect(request, f"/ui/segments/{segment.id}", flash=f"Segment “{segment.name}” saved.")


@router.get("/ui/segments/{segment_id}", response_class=HTMLResponse)
def segment_page(request: Request, segment_id: int, ui: UiDep) -> HTMLResponse:
    """A segment's rules and the contacts it matches now."""
    service = ContactService(ui.session, ui.actor)
    segment = service.segment(segment_id)
    contacts = ui.session.scalars(service.segment_contacts_query(segment_id).limit(PAGE_SIZE)).all()
    total = UiRepository(ui.session, ui.account.id).count_contacts(compile_rules(segment.rules))
    return render(
        request,
        "segment.html",
        title=segment.name,
        segment=segment,
        rules_json=json.dumps(segment.rules, indent=2),
        contacts=contacts,
        total=total,
    )


# -- senders and webhooks --------------------------------------------------------------------------
def _senders_page(request: Request, ui: UiContext, *, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    items = ui.session.scalars(SenderService(ui.session, ui.actor).senders_query().limit(MAX_ROWS)).all()
    return render(request, "senders.html", status_code=status_code, title="Senders", items=items, error=error)


@router.get("/ui/senders", response_class=HTMLResponse)
def senders(request: Request, ui: UiDep) -> HTMLResponse:
    """The From identities sends use."""
    return _senders_page(request, ui)


@router.post("/ui/senders")
def create_sender(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Create a sender."""
    try:
        sender = SenderService(ui.session, ui.actor).create(
            form_text(form, "from_email"),
            from_name=form_text(form, "from_name") or None,
            reply_to=form_text(form, "reply_to") or None,
            address=form_text(form, "address") or None,
        )
    except (Invalid, Conflict) as exc:
        ui.session.rollback()
        return _senders_page(request, ui, error=_problem(exc), status_code=422)
    return redirect(request, "/ui/senders", flash=f"Sender {sender.from_email} created.")


def _webhooks_page(
    request: Request, ui: UiContext, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    service = WebhookService(ui.session, ui.actor, cipher=ui.container.cipher)
    items = ui.session.scalars(service.webhooks_query().limit(MAX_ROWS)).all()
    return render(
        request,
        "webhooks.html",
        status_code=status_code,
        title="Webhooks",
        items=items,
        error=error,
        events=EVENTS,
        formats=FORMATS,
    )


@router.get("/ui/webhooks", response_class=HTMLResponse)
def webhooks(request: Request, ui: UiDep) -> HTMLResponse:
    """Webhooks and the events they receive."""
    return _webhooks_page(request, ui)


@router.post("/ui/webhooks")
def create_webhook(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Create a webhook (no events ticked = every event of its format)."""
    events = [e for e in form.getlist("events") if isinstance(e, str)]
    try:
        hook = WebhookService(ui.session, ui.actor, cipher=ui.container.cipher).create(
            form_text(form, "url"),
            events=events or None,
            secret=form_text(form, "secret") or None,
            format=form_text(form, "format") or "native",
        )
    except (Invalid, Conflict) as exc:
        ui.session.rollback()
        return _webhooks_page(request, ui, error=_problem(exc), status_code=422)
    return redirect(request, "/ui/webhooks", flash=f"Webhook to {hook.url} created.")


@router.post("/ui/webhooks/{webhook_id}/delete")
def delete_webhook(request: Request, webhook_id: int, ui: UiDep) -> Response:
    """Remove a webhook."""
    WebhookService(ui.session, ui.actor, cipher=ui.container.cipher).delete(webhook_id)
    return redirect(request, "/ui/webhooks", flash="Webhook deleted.")
