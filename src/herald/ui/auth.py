"""Signing in to and out of the admin UI."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from herald.accounts.repository import AccountRepository
from herald.accounts.service import AccountService
from herald.api.deps import ContainerDep, SessionDep
from herald.errors import Unauthorized
from herald.security import constant_time_equals
from herald.ui import session as cookies
from herald.ui.deps import STATIC_DIR, FormDep, UiDep, form_text, redirect, render, safe_next, ui_router

router = ui_router()

_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
_STATIC_FILES = {p.name for p in STATIC_DIR.iterdir() if p.suffix in _STATIC_TYPES}


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    """The UI's own CSS and JavaScript (htmx, the chart library), served from the package; no build step."""
    if name not in _STATIC_FILES:
        return Response(status_code=404)
    path = STATIC_DIR / name
    return FileResponse(path, media_type=_STATIC_TYPES[path.suffix], headers={"Cache-Control": "max-age=3600"})


def _login_page(
    request: Request, container: ContainerDep, *, error: str | None, form: dict[str, str], status: int
) -> HTMLResponse:
    token = cookies.login_token(request)
    next_url = safe_next(form.get("next"))
    page = render(request, "login.html", status_code=status, error=error, form=form, next=next_url, login_token=token)
    cookies.keep_login_token(page, container, token)
    return page


@router.get("/ui/login", response_class=HTMLResponse)
def login_page(request: Request, container: ContainerDep) -> HTMLResponse:
    """The sign-in form."""
    return _login_page(request, container, error=None, form={"next": request.query_params.get("next", "")}, status=200)


@router.post("/ui/login")
def login(request: Request, session: SessionDep, container: ContainerDep, form: FormDep) -> Response:
    """Check user id (or account + name) and password; start a session on success, one vague error otherwise."""
    values = {k: form_text(form, k) for k in ("account", "user", "next")}
    presented = form_text(form, "login_token")
    expected = request.cookies.get(cookies.LOGIN_CSRF_COOKIE, "")
    if not presented or not expected or not constant_time_equals(presented, expected):
        return _login_page(request, container, error="The form expired. Please try again.", form=values, status=403)
    password = form.get("password")
    service = AccountService(session, container.cipher)
    user_id = _user_id(AccountRepository(session), values["account"], values["user"])
    try:
        user = service.check_password(user_id or 0, password if isinstance(password, str) else "")
    except Unauthorized:
        return _login_page(request, container, error="Wrong user or password.", form=values, status=401)
    response = redirect(request, safe_next(values["next"]))
    cookies.start_session(response, container, user_id=user.id, account_id=user.account_id, pw_hash=user.password_hash)
    return response


def _user_id(repo: AccountRepository, account: str, user: str) -> int | None:
    """The user meant by the form: a bare user id, or a name within the given account id."""
    if account:
        if not account.isdigit() or not user:
            return None
        found = repo.user_by_name(int(account), user)
        if found is not None:
            return found.id
        # A number typed as the "name" may still be the user id, if it belongs to that account.
        by_id = repo.get_user(int(account), int(user)) if user.isdigit() else None
        return by_id.id if by_id is not None else None
    return int(user) if user.isdigit() and len(user) < 12 else None


@router.post("/ui/logout")
def logout(request: Request, ui: UiDep) -> Response:
    """End the session (a POST with the CSRF token, so no other site can sign a user out)."""
    response = redirect(request, "/ui/login", flash="You are signed out.", level="info")
    cookies.end_session(response, ui.container)
    return response
