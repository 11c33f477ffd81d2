"""RFC 9457 problem+json for the native API: every domain error mapped once, naming the offending field."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from herald.errors import Conflict, Forbidden, HeraldError, Invalid, NotAllowed, NotFound, RateLimited, Unauthorized

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def herald_error_response(exc: HeraldError) -> JSONResponse:
    """Map a domain error to its HTTP problem."""
    if isinstance(exc, Invalid):
        return problem(
            422, "Invalid input", exc.message, field=exc.field, errors=[{"field": exc.field, "message": exc.reason}]
        )
    if isinstance(exc, NotFound):
        return problem(404, "Not found", exc.message)
    if isinstance(exc, NotAllowed):
        return problem(409, "Not allowed", exc.message, current_status=exc.current_status)
    if isinstance(exc, Conflict):
        extra = {"field": exc.field} if exc.field else {}
        return problem(409, "Conflict", exc.message, **extra)
    if isinstance(exc, RateLimited):
        resp = problem(429, "Too many requests", exc.message)
        if exc.retry_after:
            resp.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return resp
    if isinstance(exc, Forbidden):
        return problem(403, "Forbidden", exc.message)
    if isinstance(exc, Unauthorized):
        return problem(401, "Unauthorized", exc.message)
    return problem(400, "Bad request", exc.message)


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers on the native API app."""

    @app.exception_handler(HeraldError)
    async def _herald(_request: Request, exc: HeraldError) -> JSONResponse:
        return herald_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _loc_to_field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return problem(
            422, "Invalid input", f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail))
