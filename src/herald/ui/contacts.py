"""Contacts and addresses: search, a contact's fields and consent timeline, status changes, CSV import."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from herald.consent import rules
from herald.consent.models import Address
from herald.consent.service import ConsentService
from herald.contacts.importer import (
    BadRow,
    ContactImporter,
    ImportResult,
    RowParser,
    parse_header,
    read_rows,
)
from herald.contacts.models import CONTACT_FIELDS, Contact
from herald.contacts.service import ContactService
from herald.errors import HeraldError, Invalid, NotAllowed
from herald.ui.deps import FormDep, UiContext, UiDep, form_text, redirect, render, safe_next, ui_router
from herald.ui.repository import UiRepository

router = ui_router()
PAGE_SIZE = 50
TIMELINE_LIMIT = 1000
# A browser upload is read in one request: bigger files belong to `herald contacts import`.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_SHOWN_BAD_ROWS = 500
# The targets a person may choose; `unknown` is never a target (see consent rules).
STATUS_CHOICES = tuple(s for s in rules.STATUSES if s != rules.UNKNOWN)


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() and len(raw) < 7 else 1


@router.get("/ui/contacts", response_class=HTMLResponse)
def contacts(request: Request, ui: UiDep) -> HTMLResponse:
    """Contacts (and known addresses without a contact) matching an email or name fragment."""
    query = request.query_params.get("q", "")[:200]
    page = _page(request)
    repo = UiRepository(ui.session, ui.account.id)
    rows = repo.search_contacts(query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1)
    loose = repo.addresses_without_contact(query, limit=20) if page == 1 else []
    return render(
        request,
        "contacts.html",
        title="Contacts",
        q=query,
        rows=rows[:PAGE_SIZE],
        page=page,
        has_next=len(rows) > PAGE_SIZE,
        loose=loose,
    )


def _consent_context(ui: UiContext, addr: Address | None) -> dict[str, Any]:
    """The timeline of an address with who did each change, and the status form's choices."""
    if addr is None:
        return {"address": None, "events": [], "users": {}, "creds": {}, "choices": STATUS_CHOICES}
    consent = ConsentService(ui.session, ui.actor, hash_key=ui.container.hash_key)
    events = list(consent.events(addr, limit=TIMELINE_LIMIT))
    users, creds = UiRepository(ui.session, ui.account.id).actor_names(events)
    return {
        "address": addr,
        "effective": consent.effective_status(addr),
        "events": list(reversed(events)),
        "users": users,
        "creds": creds,
        "choices": STATUS_CHOICES,
        "allowed": [s for s in STATUS_CHOICES if rules.is_allowed(addr.status, s)],
    }


def _contact_page(
    request: Request, ui: UiContext, contact: Contact, *, status_code: int = 200, refusal: str | None = None
) -> HTMLResponse:
    addr = ConsentService(ui.session, ui.actor, hash_key=ui.container.hash_key).find(contact.email)
    profile = [(name, getattr(contact, name)) for name in CONTACT_FIELDS if getattr(contact, name) not in (None, "")]
    return render(
        request,
        "contact.html",
        status_code=status_code,
        title=contact.email,
        contact=contact,
        profile=profile,
        custom=sorted((contact.fields or {}).items()),
        refusal=refusal,
        back=f"/ui/contacts/{contact.id}",
        **_consent_context(ui, addr),
    )


@router.get("/ui/contacts/{contact_id}", response_class=HTMLResponse)
def contact_page(request: Request, contact_id: int, ui: UiDep) -> HTMLResponse:
    """One contact: profile and custom fields, consent state and every ledger event."""
    contact = ContactService(ui.session, ui.actor, hash_key=ui.container.hash_key).get(contact_id)
    return _contact_page(request, ui, contact)


def _address_page(
    request: Request, ui: UiContext, addr: Address, *, status_code: int = 200, refusal: str | None = None
) -> HTMLResponse:
    return render(
        request,
        "address.html",
        status_code=status_code,
        title=addr.email,
        refusal=refusal,
        back=f"/ui/addresses/{addr.id}",
        **_consent_context(ui, addr),
    )


@router.get("/ui/addresses/{address_id}", response_class=HTMLResponse)
def address_page(request: Request, address_id: int, ui: UiDep) -> HTMLResponse:
    """A known address without a contact: its consent state and timeline."""
    addr = ConsentService(ui.session, ui.actor, hash_key=ui.container.hash_key).get_by_id(address_id)
    contact = ContactService(ui.session, ui.actor).find_by_email(addr.email)
    if contact is not None:
        return _contact_page(request, ui, contact)
    return _address_page(request, ui, addr)


@router.post("/ui/addresses/{address_id}/status")
def change_status(request: Request, address_id: int, ui: UiDep, form: FormDep) -> Response:
    """Move an address to a new state through ConsentService; a refused transition is shown, not hidden."""
    consent = ConsentService(ui.session, ui.actor, hash_key=ui.container.hash_key)
    addr = consent.get_by_id(address_id)
    status = form_text(form, "status")
    reason = form_text(form, "reason")[:1000] or "changed in the admin UI"
    until_text = form_text(form, "until")
    back = safe_next(form_text(form, "next") or f"/ui/addresses/{address_id}")
    try:
        until = datetime.fromisoformat(until_text) if until_text else None
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)  # the form asks for UTC
    except ValueError:
        until = None
        refusal: str | None = "The end date is not a valid date."
    else:
        refusal = None
    if refusal is None:
        try:
            consent.transition(addr, status, until=until, reason=reason)
        except NotAllowed as exc:
            refusal = (
                f"Refused: {addr.email} cannot go from {exc.current_status} to {status} (the consent rules forbid it)."
            )
        except Invalid as exc:
            refusal = f"Refused: {exc.reason} ({exc.field})."
    if refusal is None:
        return redirect(request, back, flash=f"{addr.email} is now {status.replace('_', ' ')}.")
    # Nothing changed: roll back anything the attempt staged, then show the refusal on the same page.
    ui.session.rollback()
    addr = consent.get_by_id(address_id)
    contact = ContactService(ui.session, ui.actor).find_by_email(addr.email)
    if contact is not None:
        return _contact_page(request, ui, contact, status_code=409, refusal=refusal)
    return _address_page(request, ui, addr, status_code=409, refusal=refusal)


# -- CSV import -----------------------------------------------------------------------------------
@router.get("/ui/import", response_class=HTMLResponse)
def import_page(request: Request, ui: UiDep) -> HTMLResponse:
    """The CSV upload form, with the accepted columns."""
    return render(request, "import.html", title="Import contacts", fields=("email", *CONTACT_FIELDS), result=None)


@router.post("/ui/import", response_class=HTMLResponse)
def import_csv(request: Request, ui: UiDep, form: FormDep) -> HTMLResponse:
    """Import an uploaded CSV through the same importer as the CLI, reporting each bad row by line."""
    upload = form.get("file")
    fields = ("email", *CONTACT_FIELDS)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(
            request,
            "import.html",
            status_code=422,
            title="Import contacts",
            fields=fields,
            result=None,
            error="Choose a CSV file to upload.",
        )
    raw = upload.file.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        return render(
            request,
            "import.html",
            status_code=413,
            title="Import contacts",
            fields=fields,
            result=None,
            error=f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: use `herald contacts import`.",
        )
    try:
        result, bad = _import(ui, raw)
    except Invalid as exc:
        ui.session.rollback()
        return render(
            request,
            "import.html",
            status_code=422,
            title="Import contacts",
            fields=fields,
            result=None,
            error=f"The file cannot be imported: {exc.reason}.",
        )
    return render(
        request,
        "import.html",
        title="Import contacts",
        fields=fields,
        result=result,
        bad=bad[:MAX_SHOWN_BAD_ROWS],
        more_bad=max(0, len(bad) - MAX_SHOWN_BAD_ROWS),
        filename=upload.filename,
    )


def _import(ui: UiContext, raw: bytes) -> tuple[ImportResult, list[BadRow]]:
    """Parse and write the file in batches within the request's transaction."""
    importer = ContactImporter(ui.session, ui.actor, hash_key=ui.container.hash_key)
    type_ids = importer.contact_type_ids()
    result = ImportResult()
    bad: list[BadRow] = []
    batch: list[list[Any]] = []  # import rows (herald.contacts.importer.ImportRow)
    columns_seen: list[Any] = []

    def parser_for(header: list[str]) -> RowParser:
        columns = parse_header(header)
        columns_seen.append(columns)
        return RowParser(columns, ui.account.id, type_ids)

    def flush() -> None:
        created, updated = importer.write_batch(batch, columns_seen[0])
        result.imported += created
        result.updated += updated
        batch.clear()

    # surrogateescape keeps undecodable bytes visible to the row check instead of failing the whole file.
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", errors="surrogateescape", newline="")
    for row, _line in read_rows(text, parser_for):
        if isinstance(row, BadRow):
            result.skipped += 1
            bad.append(row)
            continue
        batch.append(row)
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()
    return result, bad


def refusal_text(exc: HeraldError) -> str:
    """A domain refusal as one sentence for a page."""
    if isinstance(exc, Invalid):
        return f"{exc.field}: {exc.reason}"
    return exc.message
