"""Sign-Up.to wire format: the response envelope, error codes, parameter typing and list options."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from herald.errors import Conflict, Forbidden, HeraldError, Invalid, NotAllowed, NotFound, RateLimited, Unauthorized

MAX_COUNT = 200


class WireError(Exception):
    """An error answered as Sign-Up.to's error envelope with this HTTP code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ok(data: Any, *, status: int = 200, count: int | None = None, next_: Any = None) -> JSONResponse:
    """The success envelope."""
    if count is None:
        count = len(data) if isinstance(data, list) else 1
    return JSONResponse({"status": "ok", "response": {"data": data, "count": count, "next": next_}}, status_code=status)


def error(code: int, message: str) -> JSONResponse:
    """The error envelope; the HTTP status is the code."""
    headers = {"WWW-Authenticate": "SuTHash"} if code == 401 else None
    return JSONResponse(
        {"status": "error", "response": {"code": code, "subcode": None, "message": message}},
        status_code=code,
        headers=headers,
    )


def from_domain(exc: HeraldError) -> JSONResponse:
    """A core error in Sign-Up.to's terms."""
    if isinstance(exc, Unauthorized):
        return error(401, exc.message)
    if isinstance(exc, Forbidden):
        return error(403, exc.message)
    if isinstance(exc, NotFound):
        return error(404, exc.message)
    if isinstance(exc, Invalid):
        return error(400, exc.message)
    if isinstance(exc, Conflict | NotAllowed):
        return error(409, exc.message)
    if isinstance(exc, RateLimited):
        resp = error(429, exc.message)
        if exc.retry_after:
            resp.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return resp
    return error(400, exc.message)


def parse_json_body(body: bytes) -> dict[str, Any]:
    """A JSON object body (an empty body is an empty object)."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise WireError(400, "Malformed JSON body") from None
    if not isinstance(value, dict):
        raise WireError(400, "The JSON body must be an object")
    return value


# -- typing of parameters (JSON values, or strings from forms and query strings) ---------------
def as_int(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    """An integer parameter (None when absent)."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise Invalid(name, "is required")
        return None
    if isinstance(value, bool):
        raise Invalid(name, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise Invalid(name, "must be an integer")


def as_nullable_int(params: dict[str, Any], name: str) -> int | None:
    """An int/null parameter that is present (JSON null, or "null"/"" in a form)."""
    value = params.get(name)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null")):
        return None
    return as_int(params, name)


def as_bool(params: dict[str, Any], name: str) -> bool | None:
    """A boolean parameter: true/false, 1/0 (None when absent)."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise Invalid(name, "must be true or false")


def as_str(params: dict[str, Any], name: str) -> str | None:
    """A string parameter (None when absent)."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise Invalid(name, "must be a string")
    return str(value)


def as_ids(params: dict[str, Any], name: str = "id") -> tuple[int, ...] | None:
    """An id filter: one id, a comma-separated list, or a JSON array."""
    value = params.get(name)
    if value is None or value == "":
        return None
    items = value if isinstance(value, list) else str(value).split(",") if isinstance(value, str) else [value]
    out = []
    for item in items:
        out.append(as_int({name: item}, name, required=True))
    return tuple(i for i in out if i is not None)


@dataclass(frozen=True)
class ListOptions:
    """`sort`, `count`, `start` and `reverse` of a GET."""

    sort: str
    count: int
    start: int
    reverse: bool


def list_options(params: dict[str, Any], sortable: tuple[str, ...]) -> ListOptions:
    """The list options of a GET, validated (count at most 200)."""
    sort = as_str(params, "sort") or "id"
    if sort not in sortable:
        raise Invalid("sort", f"must be one of {', '.join(sortable)}")
    count = as_int(params, "count")
    if count is None:
        count = MAX_COUNT
    if count < 1 or count > MAX_COUNT:
        raise Invalid("count", f"must be between 1 and {MAX_COUNT}")
    start = as_int(params, "start") or 0
    if start < 0:
        raise Invalid("start", "must not be negative")
    return ListOptions(sort=sort, count=count, start=start, reverse=bool(as_bool(params, "reverse")))


def found(rows: list[dict[str, Any]], total: int, opts: ListOptions) -> JSONResponse:
    """A GET answer: 404 when nothing matched, otherwise the window with `next` = start of the next one."""
    if not rows:
        raise WireError(404, "No matching resources found")
    following = opts.start + len(rows)
    return ok(rows, count=len(rows), next_=following if following < total else None)
