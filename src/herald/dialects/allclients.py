"""AllClients API v2: SetOptInStatus, GetOptInStatus and AddContact as form posts answering XML or JSON.

Every answer is HTTP 200; failures are `<results><error>…</error></results>`. Field values longer than the
vendor's maximum are trimmed to it, never refused (the vendor documents that). A credential over
HERALD_RATE_LIMIT_PER_MINUTE gets `<error>API Rate Limit Exceeded</error>` (still HTTP 200, as every
AllClients failure) and nothing is done.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from herald import ratelimit
from herald.accounts.service import AccountService, Authenticated
from herald.actor import Actor
from herald.consent import rules
from herald.consent.models import Address
from herald.consent.service import ConsentService
from herald.contacts.service import ContactService
from herald.container import Container
from herald.db.engine import is_postgres, read_only
from herald.dialects.common import (
    BodyTooLarge,
    MalformedBody,
    build_element,
    container_of,
    dialect_actor,
    in_thread,
    parse_form,
    query_fields,
    read_body,
    xml_document,
)
from herald.errors import HeraldError, Invalid, NotAllowed, NotFound, RateLimited, Unauthorized

router = APIRouter(include_in_schema=False)

SOURCE = "allclients"
EMAIL_MAX = 75

# The AllClients names of the consent states (as GetOptInStatus spells them).
STATUS_NAMES = {
    rules.UNKNOWN: "Unknown",
    rules.PENDING: "Pending",
    rules.OPTED_IN: "Opt In",
    rules.OPTED_OUT: "Opt Out",
    rules.BOUNCED: "Bounced",
    rules.SPAM_REPORTED: "Spam Report",
}
# SetOptInStatus `status` codes; 3 is Bounce (the seed's table lost the digit).
STATUS_CODES = {"1": rules.OPTED_IN, "2": rules.OPTED_OUT, "3": rules.BOUNCED, "4": rules.SPAM_REPORTED}

AUTH_FAILED = "Authentication failed"
NOT_FOUND = "Email Address Not Found"
NOT_ALLOWED = "Unable to Set Opt In Status (Not allowed for current status {status})"
INVALID_STATUS = "Unable to Set Opt In Status (Invalid status value)"
TOO_LARGE = "Request Too Large"
MALFORMED = "Invalid Request"
RATE_LIMITED = "API Rate Limit Exceeded"

Result = dict[str, Any]


class _Failure(Exception):
    """Carries the vendor error text out of a transaction (so it rolls back)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _render(result: Result, *, as_json: bool) -> Response:
    if as_json:
        return Response(json.dumps(result), media_type="application/json")
    return Response(xml_document(build_element("results", result)), media_type="text/xml; charset=utf-8")


def _field(fields: Mapping[str, str], name: str, max_length: int | None = None) -> str:
    value = (fields.get(name) or "").strip()
    return value[:max_length] if max_length else value


def _authenticate(container: Container, fields: Mapping[str, str]) -> Callable[[Any], Authenticated]:
    def check(session: Any) -> Authenticated:
        accountid, apikey = _field(fields, "accountid"), _field(fields, "apikey")
        if not accountid.isdigit() or not apikey:
            raise Unauthorized(AUTH_FAILED)
        auth = AccountService(session, container.cipher).authenticate_allclients(str(int(accountid)), apikey)
        ratelimit.check(container, auth.credential.id)
        return auth

    return check


@dataclass
class Call:
    """One authenticated form post inside its transaction."""

    consent: ConsentService
    actor: Actor
    fields: Mapping[str, str]
    hash_key: bytes


Work = Callable[[Call], Result]


# SQLite lets one transaction write at a time and makes the others poll for the lock (busy_timeout): its
# busy handler sleeps 1, 2, 5 … then 100 ms between tries, so with a thread per request (the server's pool
# of 40) a writer that lost a few races slept 100 ms at a time while newcomers took the lock — under
# wrk -c32 SetOptInStatus had p50 39 ms but p99 1,270–1,450 ms. One thread of our own queues this
# process's AllClients writes in arrival order instead, so only other processes' writers are polled for.
# PostgreSQL locks rows, not the database: there the calls keep running side by side on the shared pool.
_SQLITE_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="herald-allclients")


async def _off_loop(container: Container, fn: Callable[[], Result], *, writes: bool) -> Result:
    """Run one call's database work off the event loop (SQLite writes one after another, see above)."""
    if writes and not is_postgres(container.engine):
        return await asyncio.get_running_loop().run_in_executor(_SQLITE_WRITER, fn)
    return await in_thread(fn)


async def _handle(request: Request, work: Work, *, writes: bool = True) -> Response:
    """Read and authenticate a form post, run `work` in one transaction, map errors to AllClients texts."""
    container = container_of(request)
    as_json = query_fields(request).get("response_type", "").strip().lower() == "json"
    try:
        fields = {**query_fields(request), **await parse_form(request, await read_body(request))}
    except BodyTooLarge:
        return _render({"error": TOO_LARGE}, as_json=as_json)
    except MalformedBody:
        return _render({"error": MALFORMED}, as_json=as_json)
    as_json = _field(fields, "response_type").lower() == "json"
    authenticate = _authenticate(container, fields)

    def run() -> Result:
        # A read takes no SQLite write lock (so it never queues behind writers).
        with read_only() if not writes else nullcontext(), container.transaction() as session:
            actor = dialect_actor(request, authenticate(session), SOURCE)
            consent = ConsentService(session, actor, hash_key=container.hash_key)
            return work(Call(consent, actor, fields, container.hash_key))

    try:
        result = await _off_loop(container, run, writes=writes)
    except Unauthorized:
        result = {"error": AUTH_FAILED}
    except RateLimited:
        result = {"error": RATE_LIMITED}
    except _Failure as exc:
        result = {"error": exc.text}
    return _render(result, as_json=as_json)


def _known_address(svc: ConsentService, fields: Mapping[str, str]) -> Address:
    """The address named by the `email` field, trimmed to 75 characters; only addresses the account knows."""
    email = _field(fields, "email", EMAIL_MAX)
    try:
        return svc.get(email)
    except (Invalid, NotFound):
        raise _Failure(NOT_FOUND) from None


def _set_opt_in_status(call: Call) -> Result:
    svc, fields = call.consent, call.fields
    addr = _known_address(svc, fields)
    target = STATUS_CODES.get(_field(fields, "status", 1))
    if target is None:
        raise _Failure(INVALID_STATUS)
    try:
        svc.transition(addr, target, reason="AllClients SetOptInStatus")
    except NotAllowed as exc:
        current = STATUS_NAMES.get(exc.current_status or "", exc.current_status or "")
        raise _Failure(NOT_ALLOWED.format(status=current)) from None
    except HeraldError as exc:
        raise _Failure(exc.message) from None
    return {"message": "Success", "details": f"Email Address ({addr.email}) is Now {STATUS_NAMES[target]}"}


def _get_opt_in_status(call: Call) -> Result:
    svc = call.consent
    addr = _known_address(svc, call.fields)
    status = STATUS_NAMES[svc.effective_status(addr)]
    return {"message": "Success", "details": {"emailaddress": addr.email, "optinstatus": status}}


# AddContact form fields → Herald contact fields (the rest of the vendor's fields go to `fields`).
CONTACT_FIELD_MAP = {
    "firstname": ("first_name", 50),
    "lastname": ("last_name", 50),
    "company": ("company_name", 50),
    "address": ("address_line1", 50),
    "city": ("city", 50),
    "state": ("state", 20),
    "postalcode": ("postal_code", 20),
    "country": ("country", 50),
}
_NOT_CONTACT_DATA = {"accountid", "apikey", "response_type", "email", "teammemberid", *CONTACT_FIELD_MAP}


def _add_contact(call: Call) -> Result:
    fields = call.fields
    email = _field(fields, "email", EMAIL_MAX)
    data: dict[str, Any] = {}
    for vendor, (name, max_length) in CONTACT_FIELD_MAP.items():
        value = _field(fields, vendor, max_length)
        if value:
            data[name] = value
    extra = {k: v.strip()[:200] for k, v in fields.items() if k not in _NOT_CONTACT_DATA and v.strip()}
    # Contacts and consent share the session and the erased-address hash key.
    contacts = ContactService(call.consent.session, call.actor, hash_key=call.hash_key)
    try:
        existing = contacts.find_by_email(email)
        contact_id = existing.id if existing is not None else contacts.create(email, {**data, "fields": extra}).id
    except Invalid as exc:
        raise _Failure("Invalid Email Address" if exc.field == "email" else exc.message) from None
    except HeraldError as exc:
        raise _Failure(exc.message) from None
    return {"message": "Success", "contactid": contact_id}


@router.post("/api/2/SetOptInStatus.aspx")
async def set_opt_in_status(request: Request) -> Response:
    """Set the opt-in status of an address the account already knows, under the consent rules."""
    return await _handle(request, _set_opt_in_status)


@router.post("/api/2/GetOptInStatus.aspx")
async def get_opt_in_status(request: Request) -> Response:
    """The opt-in status of an address, in AllClients words."""
    return await _handle(request, _get_opt_in_status, writes=False)


@router.post("/api/2/AddContact.aspx")
async def add_contact(request: Request) -> Response:
    """Create a contact (and make its email a known address), answering its contactid."""
    return await _handle(request, _add_contact)
