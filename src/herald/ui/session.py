"""The admin UI's signed session and flash cookies, scoped to /ui so public pages and APIs never carry them."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from herald.container import Container

SESSION_COOKIE = "herald_session"
FLASH_COOKIE = "herald_flash"
LOGIN_CSRF_COOKIE = "herald_login_csrf"
COOKIE_PATH = "/ui"
# Absolute lifetime of a sign-in: a stolen cookie stops working within a working day.
SESSION_MAX_AGE = 12 * 3600
_SESSION_PURPOSE = "ui-session"
_FLASH_PURPOSE = "ui-flash"


@dataclass(frozen=True, slots=True)
class SessionData:
    """What the session cookie carries: who signed in, and the per-session CSRF token."""

    user_id: int
    account_id: int
    csrf: str
    password_tag: str


def password_tag(password_hash: str | None) -> str:
    """A short fingerprint of the password hash, so changing the password ends every older session."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def _secure(container: Container) -> bool:
    return (container.settings.base_url or "").lower().startswith("https://")


def _set(response: Response, container: Container, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(container),
    )


def _clear(response: Response, container: Container, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="lax", secure=_secure(container))


def start_session(
    response: Response, container: Container, *, user_id: int, account_id: int, pw_hash: str | None
) -> None:
    """Sign the user in: a fresh CSRF token with every sign-in, so a token seen before sign-in is worthless."""
    payload = {"u": user_id, "a": account_id, "c": secrets.token_urlsafe(32), "p": password_tag(pw_hash)}
    token = container.signer.sign(_SESSION_PURPOSE, payload)
    _set(response, container, SESSION_COOKIE, token, max_age=SESSION_MAX_AGE)
    _clear(response, container, LOGIN_CSRF_COOKIE)


def end_session(response: Response, container: Container) -> None:
    """Sign out: the browser forgets the cookie."""
    _clear(response, container, SESSION_COOKIE)


def read_session(request: Request, container: Container) -> SessionData | None:
    """The session carried by the request, or None when absent, tampered with or expired."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        raw = container.signer.unsign(_SESSION_PURPOSE, token, max_age=SESSION_MAX_AGE)
        return SessionData(user_id=int(raw["u"]), account_id=int(raw["a"]), csrf=str(raw["c"]), password_tag=raw["p"])
    except (ValueError, KeyError, TypeError):
        return None


def login_token(request: Request) -> str:
    """The double-submit token of the sign-in form (there is no session yet to hold one)."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def keep_login_token(response: Response, container: Container, token: str) -> None:
    """Store the sign-in form's token in the browser, to compare with the hidden field on POST."""
    _set(response, container, LOGIN_CSRF_COOKIE, token, max_age=3600)


def flash(response: Response, container: Container, level: str, text: str) -> None:
    """Queue a message for the next page the browser shows (after a redirect)."""
    _set(response, container, FLASH_COOKIE, container.signer.sign(_FLASH_PURPOSE, [level, text[:500]]), max_age=300)


def read_flash(request: Request, container: Container) -> list[dict[str, Any]]:
    """The queued messages (clear them with clear_flash on the response that shows them)."""
    token = request.cookies.get(FLASH_COOKIE)
    if not token:
        return []
    try:
        level, text = container.signer.unsign(_FLASH_PURPOSE, token, max_age=300)
    except (ValueError, TypeError):
        return []
    return [{"level": str(level), "text": str(text)}]


def clear_flash(request: Request, response: Response, container: Container) -> None:
    """Forget shown messages, so a reload does not show them again."""
    if request.cookies.get(FLASH_COOKIE):
        _clear(response, container, FLASH_COOKIE)
