"""RFC 9457 problem+json for the native API: every domain error mapped once, naming the offending field."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from herald.errors import Conflict, Forbidden, HeraldError, Invalid, NotAllowed, NotFound, RateLimited, Unauthorized

PROBLEM = "application/problem+json"

# Every native operation can answer these as problem+json; the OpenAPI document says so (clients and
# schema-driven tests see the real content type instead of FastAPI's default application/json 422).
ERROR_RESPONSES = {
    "400": "Bad request",
    "401": "Missing or wrong bearer token",
    "403": "Forbidden",
    "404": "Not found in the caller's account",
    "409": "Conflict, or not allowed in the current state",
    "413": "Request body too large",
    "422": "Invalid input (the offending field is named)",
    "429": "Rate limit exceeded (see Retry-After)",
}
_NULLABLE_STRING: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": _NULLABLE_STRING,
        "current_status": _NULLABLE_STRING,
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


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


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the problem+json error answers on every operation of an OpenAPI document (in place)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_RESPONSES.items():
                responses[code] = {"description": description, "content": content}
    return schema


def install(app: FastAPI) -> None:
    """Register the handlers on the native API app."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

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

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(_request: Request, _exc: Exception) -> JSONResponse:
        # A number no column can hold (SQLite raises OverflowError past 2**63, PostgreSQL a DataError past
        # its column type): no object has such an id and no field may hold it, so it is bad input, not a 500.
        return problem(422, "Invalid input", "a number is out of range", field="body")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail))


def install_prefix_not_found(app: FastAPI, prefix: str) -> None:
    """On the root app: a 404 under `prefix` that the mounted API never saw is problem+json too.

    A mount does not match a path holding a newline (e.g. an encoded %0A in an email), so the root app answers it.
    """

    @app.exception_handler(404)
    async def _not_found(request: Request, exc: Exception) -> Any:
        if request.url.path.startswith(prefix):
            return problem(404, "Not found", "Not found")
        assert isinstance(exc, StarletteHTTPException)
        return await http_exception_handler(request, exc)
