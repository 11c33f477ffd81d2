"""Public privacy pages: "download my data" and "erase me" from the preferences page, confirmed by email.

`POST /p/{token}/export|erase` (token: the preferences token of one delivery) mails the address a signed,
expiring, single-use link; `GET /privacy/export/{token}` answers the JSON export as a download,
`GET /privacy/erase/{token}` shows a confirmation form whose `POST` erases.
"""

from __future__ import annotations

import json
from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.api.deps import client_ip, db_session, get_container
from herald.consent.privacy import PrivacyService
from herald.consent.privacy_links import LinkRefused, redeem, request_confirmation
from herald.consent.privacy_repository import PrivacyRepository
from herald.container import Container
from herald.delivery import tokens
from herald.errors import NotFound

router = APIRouter(include_in_schema=False)

Db = Annotated[Session, Depends(db_session, scope="function")]
Box = Annotated[Container, Depends(get_container)]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "button{font-size:1rem;padding:.5rem 1rem;background:#b00020;color:#fff;border:0;border-radius:4px}"
)


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _refused(message: str) -> HTMLResponse:
    return _page("Link not valid", f"<p>{escape(message)}</p>", status=410)


def _request(action: str, token: str, session: Session, container: Container) -> HTMLResponse:
    try:
        delivery_token = tokens.read(container.signer, tokens.PREFERENCES, token)
    except ValueError:
        return _page("Link not valid", "<p>This link is not valid.</p>", status=404)
    delivery = PrivacyRepository(session).delivery_by_token(delivery_token)
    if delivery is None or delivery.address_id is None:
        return _page("Link not valid", "<p>This link is no longer valid.</p>", status=404)
    request_confirmation(session, delivery.account_id, delivery.address_id, action)
    what = "download your data" if action == "export" else "erase your data"
    # The same answer whether or not an email went out, so the page cannot be used to flood an inbox.
    return _page(
        "Check your inbox",
        f"<p>We sent you an email with a link to {what}. The link works once and expires in 24 hours.</p>",
    )


@router.post("/p/{token}/export")
def request_export(token: str, session: Db, container: Box) -> HTMLResponse:
    """Mail the address a link to download everything held about it."""
    return _request("export", token, session, container)


@router.post("/p/{token}/erase")
def request_erase(token: str, session: Db, container: Box) -> HTMLResponse:
    """Mail the address a link to confirm its erasure."""
    return _request("erase", token, session, container)


@router.get("/privacy/export/{token}", response_model=None)
def download_export(token: str, request: Request, session: Db, container: Box) -> Response:
    """The JSON export of the address, as a download; the link is used up."""
    try:
        account_id, address_id = redeem(session, container.signer, "export", token, consume=True)
        actor = Actor(account_id=account_id, source="public", ip=client_ip(request))
        document = PrivacyService(session, actor, hash_key=container.hash_key).export_address(address_id)
    except LinkRefused as exc:
        return _refused(str(exc))
    except NotFound:
        return _refused("There is no data left to export for this address.")
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-data.json"', "Cache-Control": "no-store"},
    )


@router.get("/privacy/erase/{token}")
def confirm_erase(token: str, session: Db, container: Box) -> HTMLResponse:
    """Ask once more before erasing (a link prefetcher must not erase anyone)."""
    try:
        redeem(session, container.signer, "erase", token, consume=False)
    except LinkRefused as exc:
        return _refused(str(exc))
    return _page(
        "Erase your data?",
        "<p>This removes everything we hold about your address: profile, subscriptions, consent history "
        "details and sending history. If you had unsubscribed, we keep only a one-way fingerprint of the "
        "address so that it is never emailed again.</p>"
        f'<form method="post" action="/privacy/erase/{escape(token)}"><button type="submit">Erase my data</button>'
        "</form>",
    )


@router.post("/privacy/erase/{token}")
def do_erase(token: str, request: Request, session: Db, container: Box) -> HTMLResponse:
    """Erase the address the confirmed link stands for; the link is used up."""
    try:
        account_id, address_id = redeem(session, container.signer, "erase", token, consume=True)
        actor = Actor(account_id=account_id, source="public", ip=client_ip(request))
        PrivacyService(session, actor, hash_key=container.hash_key).erase_address(address_id, why="on request")
    except LinkRefused as exc:
        return _refused(str(exc))
    except NotFound:
        return _refused("This address was already erased.")
    return _page("Your data was erased", "<p>We no longer hold personal data about your address.</p>")
