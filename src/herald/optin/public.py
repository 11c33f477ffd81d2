"""The public confirmation link `GET /c/{token}`: one GET confirms, a branded page answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from herald.container import Container
from herald.optin import confirm, render

router = APIRouter(include_in_schema=False)
# How long a confirmation link works.
LINK_MAX_AGE = 7 * 24 * 3600
_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())
_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$|^[a-zA-Z]{3,20}$")

_TEXTS = {
    confirm.CONFIRMED: ("Subscription confirmed", "Thank you! Your subscription{to} is confirmed."),
    confirm.ALREADY: ("Already confirmed", "Your subscription{to} was already confirmed. Nothing else to do."),
    confirm.INVALID: ("Link not valid", "This confirmation link is not valid or has expired."),
    confirm.REFUSED: ("Cannot confirm", "This subscription{to} cannot be confirmed any more."),
}


def _page(outcome: confirm.Outcome, status_code: int) -> HTMLResponse:
    branding = outcome.branding
    title, text = _TEXTS[outcome.result]
    color = str(branding.get("color") or "#2563eb")
    logo = str(branding.get("logo_url") or "")
    context: dict[str, Any] = {
        "title": title,
        "message": text.format(to=f" to {outcome.list_name}" if outcome.list_name else ""),
        "brand": str(branding.get("name") or ""),
        "color": color if _COLOR.match(color) else "#2563eb",
        "logo_url": logo if logo.startswith(("https://", "http://")) else "",
        "footer": str(branding.get("footer") or ""),
    }
    html = _env.get_template("confirm.html").render(**context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get("/c/{token}", response_class=HTMLResponse)
def confirm_link(token: str, request: Request) -> HTMLResponse:
    """Confirm a double opt-in with one click; repeated clicks say "already confirmed"."""
    container: Container = request.app.state.container
    try:
        record_id = render.read_confirm_token(container.signer, token, max_age=LINK_MAX_AGE)
    except ValueError:
        return _page(confirm.Outcome(confirm.INVALID), 404)
    with container.transaction() as session:
        outcome = confirm.confirm_record(
            session,
            record_id,
            hash_key=container.hash_key,
            ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )
    status = {confirm.INVALID: 404, confirm.REFUSED: 409}.get(outcome.result, 200)
    return _page(outcome, status)
