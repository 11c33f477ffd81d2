"""POST /inbound/messages: a raw bounce or complaint (RFC 5322 bytes) handed over by a mail server or a script.

Protected by `HERALD_INBOUND_SECRET` as `Authorization: Bearer <secret>`; without that setting only loopback
clients may post (a local MTA pipe). The body is limited to HERALD_MAX_BODY_BYTES.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from herald.api.deps import get_container
from herald.container import Container
from herald.inbound.service import InboundService
from herald.security import constant_time_equals

router = APIRouter(include_in_schema=False)
_ACCEPTED_TYPES = ("", "message/rfc822", "text/plain", "application/octet-stream")


def _problem(status: int, title: str, detail: str, **headers: str) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers or None)


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _authorised(request: Request, secret: str | None) -> bool:
    if not secret:
        return _is_loopback(request.client.host if request.client else None)
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and constant_time_equals(presented.strip(), secret)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _receive(container: Container, raw: bytes) -> dict[str, Any]:
    with container.transaction() as session:
        message = InboundService(session, container.signer, hash_key=container.hash_key).receive(raw)
        return {"id": message.id, "kind": message.kind, "outcome": message.outcome}


@router.post("/inbound/messages", status_code=202)
async def receive_message(request: Request) -> JSONResponse:
    """Take one raw message, act on it (bounce, complaint) and answer 202 with what Herald made of it."""
    container = get_container(request)
    settings = container.settings
    if not _authorised(request, settings.inbound_secret):
        if settings.inbound_secret:
            return _problem(401, "Unauthorized", "Missing or wrong inbound secret", **{"WWW-Authenticate": "Bearer"})
        return _problem(403, "Forbidden", "Set HERALD_INBOUND_SECRET to accept messages from other hosts")
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in _ACCEPTED_TYPES:
        return _problem(415, "Unsupported media type", "Send the raw message as message/rfc822 or text/plain")
    raw = await _read_limited(request, settings.max_body_bytes)
    if raw is None:
        return _problem(413, "Payload too large", f"request body exceeds {settings.max_body_bytes} bytes")
    if not raw.strip():
        return _problem(400, "Bad request", "The body must be a raw RFC 5322 message")
    result = await run_in_threadpool(_receive, container, raw)
    return JSONResponse(result, status_code=202)
