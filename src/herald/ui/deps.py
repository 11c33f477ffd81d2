"""What every admin page needs: the signed-in user as an Actor, CSRF checks, rendering and error pages."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from herald.accounts.models import Account, User
from herald.accounts.repository import AccountRepository
from herald.actor import Actor
from herald.api.deps import ContainerDep, SessionDep, client_ip, get_container
from herald.container import Container
from herald.errors import Forbidden, HeraldError, NotAllowed, NotFound, Unauthorized
from herald.security import constant_time_equals
from herald.ui import session as cookies

STATIC_DIR = Path(__file__).parent / "static"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Scripts only from our own static files (htmx, the chart library, ui.js); data goes in JSON <script> blocks.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https: http:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": _CSP,
}


class LoginRequired(Exception):
    """No valid session: the browser is sent to the sign-in page."""


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token."""


@dataclass(frozen=True)
class UiContext:
    """The signed-in user of an admin page; unpacks as `session, actor = ui`."""

    session: Session
    actor: Actor
    user: User
    account: Account
    container: Container
    csrf: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.session, self.actor))


async def posted_form(request: Request) -> FormData:
    """The request's form fields (urlencoded or multipart), parsed once and cached on the request.

    Parsing is the only async work a UI request needs; everything that touches the database runs in plain
    `def` dependencies and routes, on the thread pool. An `async def` that queried SQLite would block the
    event loop while waiting for the write lock, and the request holding that lock could then never finish.
    """
    return await request.form()


FormDep = Annotated[FormData, Depends(posted_form)]


async def _presented_csrf(request: Request) -> str | None:
    """The CSRF token an unsafe request presents (header or form field); None for safe methods."""
    if request.method not in _UNSAFE:
        return None
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        value = (await request.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    return presented or ""


def current_ui_user(
    request: Request,
    session: SessionDep,
    container: ContainerDep,
    presented: Annotated[str | None, Depends(_presented_csrf)],
) -> UiContext:
    """The signed-in user as an Actor(source="ui"); also refuses any unsafe request without the CSRF token."""
    data = cookies.read_session(request, container)
    if data is None:
        raise LoginRequired
    repo = AccountRepository(session)
    user = repo.get_user(data.account_id, data.user_id)
    account = repo.get_account(data.account_id)
    if (
        user is None
        or account is None
        or not constant_time_equals(cookies.password_tag(user.password_hash), data.password_tag)
    ):
        raise LoginRequired
    if presented is not None and (not presented or not constant_time_equals(presented, data.csrf)):
        raise CsrfRefused
    actor = Actor(
        account_id=account.id,
        source="ui",
        user_id=user.id,
        is_admin=user.is_admin,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    ui = UiContext(session=session, actor=actor, user=user, account=account, container=container, csrf=data.csrf)
    request.state.ui = ui
    return ui


UiDep = Annotated[UiContext, Depends(current_ui_user)]


# -- rendering ----------------------------------------------------------------------------------------
def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.strftime(fmt) if value is not None else "—"


def _tojson_script(value: Any) -> Markup:
    """JSON safe inside a <script type="application/json"> block."""
    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@cache
def environment() -> Environment:
    """The admin templates, HTML-escaped by default."""
    env = Environment(
        loader=PackageLoader("herald.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["json_script"] = _tojson_script
    env.filters["urlquote"] = lambda v: quote(str(v), safe="")
    return env


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """An admin page in the base layout, with the user, CSRF token and pending flash messages."""
    ui: UiContext | None = getattr(request.state, "ui", None)
    container = get_container(request)
    flashes = cookies.read_flash(request, container) + list(context.pop("flashes", []))
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            path=request.url.path,
            ui=ui,
            user=ui.user if ui else None,
            account=ui.account if ui else None,
            csrf_token=ui.csrf if ui else "",
            csrf_field=CSRF_FIELD,
            flashes=flashes,
            is_htmx=is_htmx(request),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    cookies.clear_flash(request, response, container)
    return response


def is_htmx(request: Request) -> bool:
    """Whether htmx made the request (so a fragment, not a whole page, is wanted)."""
    return request.headers.get("HX-Request") == "true"


def redirect(request: Request, url: str, *, flash: str | None = None, level: str = "success") -> Response:
    """See-other to `url` (an HX-Redirect for htmx), optionally with a flash message for the next page."""
    response: Response
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if flash:
        cookies.flash(response, get_container(request), level, flash)
    return response


def safe_next(url: str | None) -> str:
    """A redirect target inside the admin UI only (no open redirects)."""
    if url and url.startswith("/ui/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/ui/"


# -- errors -------------------------------------------------------------------------------------------
def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired | Unauthorized):
        target = "/ui/login"
        if request.method == "GET" and request.url.path not in ("/ui/login", "/ui/logout"):
            target += "?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return redirect(request, target)
    if isinstance(exc, CsrfRefused):
        return render(
            request,
            "error.html",
            status_code=403,
            title="Form expired",
            message="This form was not sent with a valid security token. Reload the page and try again.",
        )
    if isinstance(exc, NotFound):
        return render(request, "error.html", status_code=404, title="Not found", message=str(exc))
    if isinstance(exc, Forbidden):
        return render(request, "error.html", status_code=403, title="Not allowed", message=str(exc))
    assert isinstance(exc, HeraldError)
    status = 409 if isinstance(exc, NotAllowed) else 422
    return render(request, "error.html", status_code=status, title="Could not do that", message=exc.message)


class UiRoute(APIRoute):
    """Routes of the admin UI: domain errors become friendly pages, a missing session goes to sign-in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (HeraldError, LoginRequired, CsrfRefused) as exc:
                return _error_page(request, exc)
            finally:
                # Forms read by current_ui_user (uploads included) are ours to close, not FastAPI's.
                await request.close()

        return route


def ui_router() -> APIRouter:
    """An APIRouter for admin pages: UiRoute error handling, hidden from any OpenAPI document."""
    return APIRouter(route_class=UiRoute, include_in_schema=False)


def form_text(form: Any, name: str) -> str:
    """A form field as stripped text ('' when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_int(form: Any, name: str) -> int | None:
    """A form field as an int, None when blank or not a number."""
    text = form_text(form, name)
    try:
        return int(text) if text else None
    except ValueError:
        return None
