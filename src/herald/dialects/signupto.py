"""The Sign-Up.to Permission Marketing API v1 dialect: `/v1/<resource>` with SuTHash / SuTToken auth.

Resource names match case-insensitively. GET and DELETE take their parameters from the query string,
POST and PUT from a JSON (or form-encoded) body, with query parameters as a fallback. Every answer is the
`{"status": "ok"|"error", "response": {…}}` envelope; POST answers 202 with the created object. A credential
(API key, or SuTToken) over HERALD_RATE_LIMIT_PER_MINUTE gets the error envelope with code 429 and Retry-After.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald import ratelimit
from herald.dialects.common import BodyTooLarge, MalformedBody, container_of, dialect_actor, in_thread, parse_form
from herald.dialects.common import read_body as read_limited_body
from herald.dialects.signupto_auth import SignuptoAuth
from herald.dialects.signupto_resources import RESOURCES, Call
from herald.dialects.signupto_wire import WireError, as_str, error, from_domain, ok, parse_json_body
from herald.errors import HeraldError, Unauthorized

log = logging.getLogger("herald.dialects.signupto")
router = APIRouter(include_in_schema=False)
SOURCE = "signupto"
METHODS = ["GET", "POST", "PUT", "DELETE"]


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, value)
    if request.method in ("POST", "PUT"):
        body = await read_limited_body(request)
        ctype = request.headers.get("content-type", "").lower()
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            params.update(await parse_form(request, body))
        elif body.strip():
            params.update(parse_json_body(body))
    return params


def _path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else request.url.path
    return path.split("?", 1)[0]


@router.api_route("/v1/{resource}", methods=METHODS)
@router.api_route("/v1/{resource}/", methods=METHODS)
async def signupto(resource: str, request: Request) -> JSONResponse:
    """Dispatch one Sign-Up.to request to its resource handler inside one transaction."""
    try:
        params = await _params(request)
    except BodyTooLarge:
        return error(413, "Request body too large")
    except MalformedBody:
        return error(400, "Malformed request body")
    except WireError as exc:
        return error(exc.code, exc.message)
    name = resource.lower()
    if name == "token":
        return await in_thread(_token, request, params)
    handler = RESOURCES.get(name)
    if handler is None:
        return error(404, f"Unknown resource {resource}")
    return await in_thread(_run, request, handler, params)


def _authenticate(request: Request) -> Any:
    container = container_of(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    # Its own transaction: a nonce is spent even when the request then fails.
    with container.transaction() as session:
        auth = SignuptoAuth(session, container.cipher).authenticate(request.method, _path(request), headers)
    ratelimit.check(container, auth.credential.id)
    return auth


def _run(request: Request, handler: Any, params: dict[str, Any]) -> JSONResponse:
    container = container_of(request)
    try:
        auth = _authenticate(request)
        with container.transaction() as session:
            actor = dialect_actor(request, auth, SOURCE)
            return handler(Call(session, actor, container, request.method, params))  # type: ignore[no-any-return]
    except WireError as exc:
        return error(exc.code, exc.message)
    except HeraldError as exc:
        return from_domain(exc)


def _token(request: Request, params: dict[str, Any]) -> JSONResponse:
    """POST /v1/token: a SuTToken for a signed request, or for username + password."""
    if request.method != "POST":
        return error(405, "Use POST to create a token")
    container = container_of(request)
    try:
        username, password = as_str(params, "username"), as_str(params, "password")
        if request.headers.get("authorization"):
            auth = _authenticate(request)
        elif username and password:
            with container.transaction() as session:
                auth = SignuptoAuth(session, container.cipher).login(username, password)
        else:
            raise Unauthorized("username and password (or a SuTHash signature) are required")
        with container.transaction() as session:
            token, expiry, token_id = SignuptoAuth(session, container.cipher).issue_token(auth)
        return ok({"id": token_id, "token": token, "expiry": expiry}, status=202)
    except HeraldError as exc:
        return from_domain(exc)
