"""Skycore wxml 1.3: `unsubscribeEmail` and `subscribeEmail` on `/API/wxml/1.3/index.php`.

A request arrives as XML in the form field `xml`, as a raw XML body, or as (GET or form) keys spelled in
lowercase. CAMPAIGNID is the Herald list id. Every answer is HTTP 200 with a <RESPONSE> document; errors
carry Skycore's ERRORCODE/ERRORINFO.

Refused subscriptions (the consent rules keep a suppressed address off every list):
    E915  the address opted out (permanently)
    E916  the address bounced
    E917  the address filed a spam complaint
    E918  the address opted out temporarily (until the date in ERRORINFO)

A credential over HERALD_RATE_LIMIT_PER_MINUTE gets E113 ("Set throughput exceeded for this API action"):
the limit is a throughput per API key, not an account quota (E120) nor a fixed call interval (E106).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response

from herald import ratelimit
from herald.accounts.service import AccountService
from herald.consent import rules
from herald.container import Container
from herald.dialects.common import (
    BodyTooLarge,
    MalformedBody,
    build_element,
    container_of,
    dialect_actor,
    in_thread,
    parse_form,
    parse_xml,
    query_fields,
    read_body,
    xml_document,
)
from herald.errors import HeraldError, Invalid, NotAllowed, NotFound, RateLimited, Unauthorized
from herald.lists.service import ACTIVE, UNCONFIRMED, ListService

log = logging.getLogger("herald.dialects.skycore")
router = APIRouter(include_in_schema=False)

SOURCE = "skycore"
PATH = "/API/wxml/1.3/index.php"
MAX_ID = 2**31 - 1

INVALID_REQUEST = ("E100", "Invalid request. Make a valid request via GET/POST/XML with all the required variables.")
ACTION_REQUIRED = ("E101", "'action' required")
AUTH_FAILED = ("E104", "User Authentication Failed.")
THROUGHPUT_EXCEEDED = ("E113", "Set throughput exceeded for this API action. API call rejected.")
INTERNAL = ("E503", "Internal error.")
EMAIL_REQUIRED = ("E911", "The 'email' is required.")
INVALID_CAMPAIGN = ("E912", "Invalid CAMPAIGNID")
CANNOT_SUBSCRIBE = ("E913", "Could not subscribe this 'email'.")
CANNOT_UNSUBSCRIBE = ("E914", "Could not unsubscribe this 'email'.")
REFUSED = {
    rules.OPTED_OUT: ("E915", "This 'email' has opted out."),
    rules.BOUNCED: ("E916", "This 'email' has bounced."),
    rules.SPAM_REPORTED: ("E917", "This 'email' has filed a spam complaint."),
}
TEMPORARILY_OPTED_OUT = "E918"


class SkycoreError(Exception):
    """An error answered as <STATUS>Failure</STATUS> with a code and info."""

    def __init__(self, code: str, info: str) -> None:
        super().__init__(f"{code} {info}")
        self.code = code
        self.info = info


def _response(fields: Mapping[str, str]) -> Response:
    body = xml_document(build_element("RESPONSE", fields), declaration=None)
    return Response(body, media_type="text/xml; charset=utf-8")


def _failure(code: str, info: str) -> Response:
    return _response({"STATUS": "Failure", "ERRORCODE": code, "ERRORINFO": info})


def _xml_fields(raw: bytes | str) -> dict[str, str]:
    """The children of a <REQUEST> document as lowercase keys."""
    try:
        root = parse_xml(raw)
    except MalformedBody as exc:
        raise SkycoreError("E108", f"XML Parse error: {exc}") from None
    return {child.tag.lower(): (child.text or "").strip() for child in root if isinstance(child.tag, str)}


async def _request_fields(request: Request) -> dict[str, str]:
    """The request's keys, from whichever of Skycore's three shapes it uses."""
    query = {k.lower(): v for k, v in query_fields(request).items()}
    if request.method != "POST":
        return _xml_fields(query["xml"]) if query.get("xml", "").strip() else query
    body = await read_body(request)
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        try:
            form = {k.lower(): v for k, v in (await parse_form(request, body)).items()}
        except MalformedBody:
            raise SkycoreError(*INVALID_REQUEST) from None
        if form.get("xml", "").strip():
            return _xml_fields(form["xml"])
        return {**query, **form}
    if body.strip():
        return _xml_fields(body)
    return query


def _campaign_id(fields: Mapping[str, str]) -> int:
    raw = fields.get("campaignid", "").strip()
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise SkycoreError(*INVALID_CAMPAIGN)
    return int(raw)


def _unsubscribe(lists: ListService, list_id: int, email: str) -> str:
    if email.upper() == "ALL":
        lists.unsubscribe_all(list_id, reason="Skycore unsubscribeEmail ALL")
        return "ALL"
    try:
        lists.unsubscribe(list_id, email, reason="Skycore unsubscribeEmail")
    except (NotFound, Invalid):
        raise SkycoreError(*CANNOT_UNSUBSCRIBE) from None
    return lists.consent.get(email).email


def _subscribe(lists: ListService, list_id: int, email: str) -> str:
    mailing_list = lists.get_list(list_id)
    status = UNCONFIRMED if mailing_list.double_opt_in else ACTIVE
    try:
        lists.subscribe(list_id, email, status=status, reason="Skycore subscribeEmail")
    except NotAllowed as exc:
        addr = lists.consent.find(email)
        if exc.current_status == rules.OPTED_OUT and addr is not None and addr.opted_out_until is not None:
            until = addr.opted_out_until.date().isoformat()
            raise SkycoreError(TEMPORARILY_OPTED_OUT, f"This 'email' has opted out until {until}.") from None
        raise SkycoreError(*REFUSED.get(exc.current_status or "", CANNOT_SUBSCRIBE)) from None
    except HeraldError:
        raise SkycoreError(*CANNOT_SUBSCRIBE) from None
    return lists.consent.get(email).email


ACTIONS = {"unsubscribeemail": _unsubscribe, "subscribeemail": _subscribe}


def _run(container: Container, request: Request, fields: Mapping[str, str]) -> Response:
    """Authenticate and perform one action in its own transaction (rolled back on any error)."""
    action = fields.get("action", "").strip().lower()
    if not action:
        raise SkycoreError(*ACTION_REQUIRED)
    api_key = fields.get("api_key", "").strip()
    with container.transaction() as session:
        if not api_key:
            raise SkycoreError(*AUTH_FAILED)
        try:
            auth = AccountService(session, container.cipher).authenticate_skycore(api_key)
        except Unauthorized:
            raise SkycoreError(*AUTH_FAILED) from None
        try:
            ratelimit.check(container, auth.credential.id)
        except RateLimited:
            raise SkycoreError(*THROUGHPUT_EXCEEDED) from None
        handler = ACTIONS.get(action)
        if handler is None:
            raise SkycoreError(*INVALID_REQUEST)
        email = fields.get("email", "").strip()
        if not email:
            raise SkycoreError(*EMAIL_REQUIRED)
        list_id = _campaign_id(fields)
        lists = ListService(session, dialect_actor(request, auth, SOURCE), hash_key=container.hash_key)
        try:
            lists.get_list(list_id)
        except NotFound:
            raise SkycoreError(*INVALID_CAMPAIGN) from None
        echoed = handler(lists, list_id, email)
    return _response({"STATUS": "Success", "CAMPAIGNID": str(list_id), "EMAIL": echoed})


@router.api_route(PATH, methods=["GET", "POST"])
async def wxml(request: Request) -> Response:
    """The Skycore XML API endpoint."""
    try:
        fields = await _request_fields(request)
        if not any(v.strip() for v in fields.values()):
            raise SkycoreError(*INVALID_REQUEST)
        return await in_thread(_run, container_of(request), request, fields)
    except BodyTooLarge:
        return _failure("E100", "Invalid request. The request body is too large.")
    except SkycoreError as exc:
        return _failure(exc.code, exc.info)
    except Exception:
        log.exception("Skycore request failed")
        return _failure(*INTERNAL)
