"""Public pages reached from emails: one-click unsubscribe, preferences, open pixel and click redirects.

No login: the signed token in the URL is the credential. A broken or tampered token gets a friendly 404
page (the open pixel answers its GIF regardless). Business rules live in herald.public.service.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from herald.api.deps import ContainerDep, SessionDep, client_ip
from herald.container import Container
from herald.delivery import tokens
from herald.errors import Invalid, NotFound
from herald.public import pages
from herald.public.service import (
    KEEP,
    PAUSE_DAYS,
    PreferencesResult,
    PublicService,
    Recipient,
    check_form_token,
    form_token,
)

log = logging.getLogger("herald.public")
router = APIRouter(include_in_schema=False)

# The smallest transparent GIF: 1x1, one colour, fully transparent.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_NO_STORE = {"Cache-Control": "no-store, max-age=0", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


async def posted_form(request: Request) -> FormData:
    """The posted form (url-encoded or multipart); an unreadable body counts as an empty form."""
    try:
        return await request.form()
    except Exception:  # a malformed body must not turn a public page into a 500
        return FormData()


FormDep = Annotated[FormData, Depends(posted_form)]


def _service(request: Request, session: SessionDep, container: ContainerDep) -> PublicService:
    return _visitor_service(request, session, container)


ServiceDep = Annotated[PublicService, Depends(_service)]


@router.get("/public/static/public.css")
def stylesheet() -> FileResponse:
    """The public pages' stylesheet (a file, so the pages' CSP can forbid inline styles)."""
    return FileResponse(
        pages.STATIC_DIR / "public.css", media_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )


# -- one-click unsubscribe --------------------------------------------------------------------------
@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, svc: ServiceDep) -> HTMLResponse:
    """Say what unsubscribing will do, with one button; a GET never changes anything (link scanners)."""
    try:
        r = svc.recipient(tokens.UNSUBSCRIBE, token)
    except NotFound:
        return pages.not_found()
    return _unsubscribe_response(svc, r, token, outcome=None)


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, svc: ServiceDep) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe: 200 and never a redirect, no cookie or form token needed."""
    try:
        r = svc.recipient(tokens.UNSUBSCRIBE, token)
    except NotFound:
        return pages.not_found()
    result = svc.unsubscribe(r)
    return _unsubscribe_response(svc, r, token, outcome=result.outcome)


def _unsubscribe_response(svc: PublicService, r: Recipient, token: str, *, outcome: str | None) -> HTMLResponse:
    return pages.render(
        "unsubscribe.html",
        account=r.account,
        title="Unsubscribe",
        outcome=outcome,
        email=r.address.email if r.address else None,
        topic=svc.send_topic(r),
        action=f"/u/{token}",
        preferences_url=f"/p/{svc.link_token(r, tokens.PREFERENCES)}",
    )


# -- preferences ------------------------------------------------------------------------------------
@router.get("/p/{token}", response_class=HTMLResponse)
def preferences_page(token: str, svc: ServiceDep) -> HTMLResponse:
    """The preferences form: topics, a pause, unsubscribe from everything, and the data rights buttons."""
    try:
        r = svc.recipient(tokens.PREFERENCES, token)
    except NotFound:
        return pages.not_found()
    return _preferences_response(svc, r, token, result=None)


@router.post("/p/{token}", response_class=HTMLResponse)
def save_preferences(token: str, svc: ServiceDep, form: FormDep) -> HTMLResponse:
    """Apply the preferences form (all changes in one transaction, all in the ledger) and show the result."""
    try:
        r = svc.recipient(tokens.PREFERENCES, token)
    except NotFound:
        return pages.not_found()
    if not check_form_token(svc.signer, r.delivery.token, _field(form, "csrf_token")):
        return pages.render(
            "form_expired.html", account=r.account, status_code=403, title="Please try again", retry_url=f"/p/{token}"
        )
    topics = {int(v) for v in form.getlist("topic") if isinstance(v, str) and v.isdigit() and len(v) < 12}
    days = _field(form, "pause_days")
    try:
        result = svc.apply_preferences(
            r,
            subscribed_topics=topics,
            action=_field(form, "action") or KEEP,
            pause_days=int(days) if days and days.isdigit() and len(days) < 4 else None,
        )
    except NotFound:
        return pages.not_found(account=r.account)
    except Invalid as exc:
        svc.session.rollback()
        refused = PreferencesResult(refused=[f"Nothing was changed: {exc.reason}."])
        return _preferences_response(svc, r, token, result=refused, status_code=400)
    return _preferences_response(svc, r, token, result=result)


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _preferences_response(
    svc: PublicService, r: Recipient, token: str, *, result: PreferencesResult | None, status_code: int = 200
) -> HTMLResponse:
    return pages.render(
        "preferences.html",
        account=r.account,
        status_code=status_code,
        title="Email preferences",
        view=svc.preferences(r),
        result=result,
        pause_days=PAUSE_DAYS,
        csrf_token=form_token(svc.signer, r.delivery.token),
        action=f"/p/{token}",
        export_action=f"/p/{token}/export",
        erase_action=f"/p/{token}/erase",
    )


# -- tracking ---------------------------------------------------------------------------------------
@router.get("/t/o/{token}.gif")
def open_pixel(token: str, request: Request, container: ContainerDep) -> Response:
    """The open pixel: always the GIF; an open is recorded only for a valid token, and a failure stays silent."""
    try:
        with container.transaction() as session:
            _visitor_service(request, session, container).record_open(token)
    except Exception:  # a pixel must never break an email's rendering
        log.exception("recording an open failed")
    return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)


@router.get("/t/c/{token}/{position}")
def click(token: str, position: str, request: Request, container: ContainerDep) -> Response:
    """Record a click and redirect to the URL recorded for that link of the send (never anywhere else)."""
    if not position.isdigit() or len(position) > 9:
        return pages.not_found()
    try:
        with container.transaction() as session:
            url = _visitor_service(request, session, container).click(token, int(position))
    except NotFound:
        return pages.not_found()
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


def _visitor_service(request: Request, session: Session, container: Container) -> PublicService:
    return PublicService(
        session,
        container.signer,
        hash_key=container.hash_key,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
