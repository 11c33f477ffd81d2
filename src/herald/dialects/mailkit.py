"""Mailkit: `mailkit.email.unsubscribe.getstatus` and `mailkit.email.unsubscribe` over JSON and XML-RPC.

JSON: `POST /json.fcgi` with `{"function","id","md5","parameters":{…}}`. XML-RPC: `POST /rpc.fcgi`, positional
parameters with `client_id` and `client_md5` first. Mailkit answers errors as data (JSON
`{"error_status":1,"error":"…"}`, XML-RPC a plain string value), never as HTTP errors or faults.
`ID_email` is the Herald address id. A credential over HERALD_RATE_LIMIT_PER_MINUTE gets the error
`Too many requests` in the same shapes (HTTP 200) and nothing is done.
"""

from __future__ import annotations

import asyncio
import json
import xmlrpc.client
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from defusedxml.xmlrpc import DefusedExpatParser
from fastapi import APIRouter, Request
from fastapi.responses import Response

from herald import ratelimit
from herald.accounts.service import AccountService, check_credential
from herald.consent import rules
from herald.consent.addresses import lookup_form
from herald.consent.models import Address
from herald.consent.service import ConsentService, TopicState, effective_status
from herald.container import Container
from herald.db.base import utcnow
from herald.dialects import mailkit_repository as db
from herald.dialects.common import BodyTooLarge, MalformedBody, container_of, dialect_actor, read_body
from herald.dialects.mailkit_repository import StatusReads
from herald.errors import Invalid, NotAllowed, NotFound, RateLimited, Unauthorized

router = APIRouter(include_in_schema=False)

SOURCE = "mailkit"
GETSTATUS = "mailkit.email.unsubscribe.getstatus"
UNSUBSCRIBE = "mailkit.email.unsubscribe"

UNAUTHORIZED = "Unauthorized"
INVALID_ID_OR_EMAIL = "Invalid ID_email or email"
MISSING_ID = "Missing ID email"
INVALID_ID = "Invalid ID_email"
INVALID_TIMEOUT_DAYS = "Invalid timeout_days"
UNKNOWN_FUNCTION = "Unknown function"
INVALID_REQUEST = "Invalid request"
TOO_LARGE = "Request too large"
RATE_LIMITED = "Too many requests"
NO_DATE = "0000-00-00"
MAX_ID = 2**31 - 1
TIMEOUT_DAYS = range(14, 91)


class MailkitError(Exception):
    """An error answered to the client in Mailkit's shape."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass
class Call:
    """One API call, whichever wire format carried it."""

    function: str
    client_id: Any
    client_md5: Any
    email: str | None = None
    id_email: Any = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AddressState:
    """The columns of an address getstatus answers from (a plain read: building an ORM Address cost ≈ 5 % of
    a call under load)."""

    id: int
    email: str
    status: str
    opted_out_until: datetime | None
    status_before_optout: str | None


@dataclass
class Status:
    """getstatus's answer."""

    email: str
    address_id: int
    unsubscribed: bool
    timeout_date: str
    topics: list[dict[str, Any]] | None


@dataclass
class Unsubscribed:
    """unsubscribe's answer."""

    address_id: int


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().upper() in ("TRUE", "1", "YES")


# -- the calls ----------------------------------------------------------------------------------
def _address(call: Call, by_id: Callable[[int], Address | None], by_email: Callable[[str], Address | None]) -> Address:
    """The address named by ID_email and/or email; both must agree when both are given."""
    if _absent(call.email) and _absent(call.id_email):
        raise MailkitError(MISSING_ID)
    addr: Address | None = None
    if not _absent(call.id_email):
        raw = str(call.id_email).strip()
        if isinstance(call.id_email, bool) or not raw.isdigit():
            raise MailkitError(INVALID_ID)
        if int(raw) > MAX_ID:
            raise MailkitError(INVALID_ID_OR_EMAIL)
        addr = by_id(int(raw))
        if addr is None:
            raise MailkitError(INVALID_ID_OR_EMAIL)
    if not _absent(call.email):
        try:
            found = by_email(str(call.email))
        except Invalid:
            raise MailkitError(INVALID_ID_OR_EMAIL) from None
        if found is None or (addr is not None and addr.id != found.id):
            raise MailkitError(INVALID_ID_OR_EMAIL)
        addr = found
    assert addr is not None
    return addr


def _service_address(svc: ConsentService, call: Call) -> Address:
    """_address through the consent service (loaded objects, for calls that change them)."""

    def by_id(address_id: int) -> Address | None:
        try:
            return svc.get_by_id(address_id)
        except NotFound:
            return None

    return _address(call, by_id, svc.find)


def _status(addr: Address | AddressState, status: str, states: list[TopicState]) -> Status:
    # A complaint is an unsubscribe to Mailkit; a bounce is not (Mailkit keeps bounces apart).
    unsubscribed = status in (rules.OPTED_OUT, rules.SPAM_REPORTED)
    temporary = status == rules.OPTED_OUT and addr.opted_out_until is not None
    topics = None
    if any(t.unsubscribed for t in states):
        topics = [
            {
                "ID_TOPIC": t.id,
                "UNSUBSCRIBE": "TRUE" if t.unsubscribed else "FALSE",
                "ID_UNSUBSCRIBE_GROUP": t.id,
                "NAME": t.name,
                "STATUS": "enabled",
                "DESCRIPTION": t.description,
            }
            for t in states
        ]
    date = addr.opted_out_until.date().isoformat() if temporary and addr.opted_out_until else NO_DATE
    return Status(addr.email, addr.id, unsubscribed, date, topics)


def _unsubscribe(svc: ConsentService, call: Call) -> Unsubscribed:
    addr = _service_address(svc, call)
    until = None
    if _truthy(call.options.get("timeout") or False):
        days = str(call.options.get("timeout_days") or "").strip()
        if not days.isdigit() or int(days) not in TIMEOUT_DAYS:
            raise MailkitError(INVALID_TIMEOUT_DAYS)
        until = utcnow() + timedelta(days=int(days))
    reason = "Mailkit unsubscribe"
    if not _absent(call.options.get("ID_send_message")):
        reason += f" (ID_send_message {str(call.options['ID_send_message']).strip()[:40]})"
    try:
        svc.transition(addr, rules.OPTED_OUT, until=until, reason=reason)
    except NotAllowed as exc:
        # Unsubscribing an unsubscribed address is done already, as Mailkit answers it; asking a temporary
        # opt-out to become permanent is not something the consent rules allow, so it stays an error.
        done = exc.current_status == rules.OPTED_OUT and (until is not None or addr.opted_out_until is None)
        if not done:
            raise MailkitError(f"Not allowed for current status {exc.current_status}") from None
    return Unsubscribed(addr.id)


# Calls that go through the consent service (getstatus has its own read path, _run_getstatus).
FUNCTIONS: dict[str, Callable[[ConsentService, Call], Status | Unsubscribed]] = {UNSUBSCRIBE: _unsubscribe}


def _run(container: Container, request: Request, call: Call) -> Status | Unsubscribed:
    """Authenticate and run one call in its own transaction (rolled back on any error)."""
    client_id = call.client_id
    if isinstance(client_id, bool) or _absent(client_id) or not str(client_id).strip().isdigit():
        raise MailkitError(UNAUTHORIZED)
    if not isinstance(call.client_md5, str) or not call.client_md5:
        raise MailkitError(UNAUTHORIZED)
    key_id = str(int(str(client_id).strip()))
    if call.function == GETSTATUS:
        return _run_getstatus(container, key_id, call)
    with container.transaction() as session:
        try:
            auth = AccountService(session, container.cipher).authenticate_mailkit(key_id, call.client_md5)
        except Unauthorized:
            raise MailkitError(UNAUTHORIZED) from None
        try:
            ratelimit.check(container, auth.credential.id)
        except RateLimited:
            raise MailkitError(RATE_LIMITED) from None
        function = FUNCTIONS.get(call.function)
        if function is None:
            raise MailkitError(UNKNOWN_FUNCTION)
        svc = ConsentService(session, dialect_actor(request, auth, SOURCE), hash_key=container.hash_key)
        return function(svc, call)


def _run_getstatus(container: Container, key_id: str, call: Call) -> Status:
    """getstatus, the hot read: one statement (credential with its account and user, address, topics).

    The same answers and the same order of refusals as the service path: credentials first (hashed and
    compared whether or not the key id exists), then the rate limit, then the address parameters.
    """
    assert isinstance(call.client_md5, str)
    key = _status_key(call)
    # Parameters that name no address still read the credential (address_id None matches no row).
    email = key if isinstance(key, str) else None
    address_id = key if isinstance(key, int) else None
    rows = _status_reads(container).read(key_id, email=email, address_id=address_id)
    first = rows[0] if rows else None
    credential = None
    if first is not None:
        credential = (
            first[db.CREDENTIAL_ID],
            first[db.ACCOUNT_ID],
            first[db.SECRET_HASH],
            first[db.ACCOUNT_EXISTS],
            bool(first[db.USER_OK]),
        )
    try:
        credential_id, _account_id = check_credential(credential, call.client_md5)
    except Unauthorized:
        raise MailkitError(UNAUTHORIZED) from None
    try:
        ratelimit.check(container, credential_id)
    except RateLimited:
        raise MailkitError(RATE_LIMITED) from None
    if isinstance(key, MailkitError):
        raise key
    assert first is not None
    if first[db.ADDRESS_ID] is None or (isinstance(key, str) and not _same_id(call.id_email, first[db.ADDRESS_ID])):
        raise MailkitError(INVALID_ID_OR_EMAIL)
    addr = AddressState(
        id=first[db.ADDRESS_ID],
        email=first[db.EMAIL],
        status=first[db.STATUS],
        opted_out_until=db.as_utc(first[db.OPTED_OUT_UNTIL]),
        status_before_optout=first[db.STATUS_BEFORE_OPTOUT],
    )
    states = [
        TopicState(r[db.TOPIC_ID], r[db.TOPIC_NAME], r[db.TOPIC_DESCRIPTION], True, bool(r[db.TOPIC_UNSUBSCRIBED]))
        for r in rows
        if r[db.TOPIC_ID] is not None
    ]
    return _status(addr, effective_status(addr), states)


def _status_key(call: Call) -> str | int | MailkitError:
    """What getstatus looks the address up by: the email as stored, else the id; or the error to answer
    (after the credential check) when the parameters cannot name an address.

    The email is looked up in `lookup_form` (see consent.addresses): anything invalid matches no row and is
    answered `Invalid ID_email or email`, as an invalid email is, without email_validator (a third of a
    call's time) on the hot path.
    """
    if _absent(call.email) and _absent(call.id_email):
        return MailkitError(MISSING_ID)
    if not _absent(call.id_email):
        raw = str(call.id_email).strip()
        if isinstance(call.id_email, bool) or not raw.isdigit():
            return MailkitError(INVALID_ID)
        if int(raw) > MAX_ID:
            return MailkitError(INVALID_ID_OR_EMAIL)
        if _absent(call.email):
            return int(raw)
    # Both given: found by email, and the id must name the same address.
    email = lookup_form(call.email)
    if email is None:
        # Never a stored address (and PostgreSQL refuses NUL in text): refused as normalise_email refuses it.
        return MailkitError(INVALID_ID_OR_EMAIL)
    return email


def _same_id(id_email: Any, address_id: int) -> bool:
    """True when ID_email is absent or names the address found by email."""
    return _absent(id_email) or int(str(id_email).strip()) == address_id


def _status_reads(container: Container) -> StatusReads:
    """The container's getstatus reader (built on first use)."""
    found = container.extras.get("mailkit_status_reads")
    if isinstance(found, StatusReads):
        return found
    made = StatusReads(container.engine)
    return container.extras.setdefault("mailkit_status_reads", made)  # type: ignore[return-value]


# A few threads of our own instead of the server's shared pool of 40: under load, dozens of threads
# running short ORM calls fought the event loop for the GIL (each hand-back can wait a switch interval),
# and the requests queued behind that convoy. Measured on SQLite under wrk -c32: 1 thread 958 req/s, 2 935,
# 4 ~880, 8 742; two keep one slow call (a checkpoint, a PostgreSQL round trip) from stalling the rest.
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="herald-mailkit")


async def _answer(request: Request, call: Call) -> Status | Unsubscribed:
    """Run one call: getstatus on an embedded database right here, everything else on the Mailkit threads.

    getstatus on SQLite is one indexed read of a WAL snapshot (≈ 40 µs, it never waits for a writer): cheaper
    than the hop to a thread and back, which under wrk -c32 also cost the p99 (thread: 1,480–1,910 req/s,
    p99 240–250 ms; here: 2,040–2,370 req/s, p99 67–122 ms, same run, load 4–5). A PostgreSQL round trip
    waits on the network, so it stays on a thread where the loop can serve others meanwhile.
    """
    container = container_of(request)
    if call.function == GETSTATUS and _status_reads(container).embedded:
        return _run(container, request, call)
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, _run, container, request, call)


# -- JSON ---------------------------------------------------------------------------------------
def _parse_json(body: bytes) -> Call:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MalformedBody(str(exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("function"), str):
        raise MalformedBody("not a Mailkit call")
    params = data.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise MalformedBody("parameters must be an object")
    options = {k: v for k, v in params.items() if k not in ("email", "ID_email")}
    email = params.get("email")
    if email is not None and not isinstance(email, str):
        email = str(email)
    return Call(data["function"], data.get("id"), data.get("md5"), email, params.get("ID_email"), options)


def _json(body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body), media_type="application/json")


def _json_error(text: str) -> Response:
    return _json({"error_status": 1, "error": text})


def _json_result(result: Status | Unsubscribed) -> Response:
    if isinstance(result, Unsubscribed):
        return _json({"error_status": "0", "ID_email": str(result.address_id), "status": "1"})
    unsubscribe = "TRUE" if result.unsubscribed else "FALSE"
    if result.topics is None:
        body: dict[str, Any] = {
            "email": result.email,
            "error_status": "0",
            "topics": None,
            "ID_email": str(result.address_id),
            "unsubscribe": unsubscribe,
            "timeout": {"date": result.timeout_date},
        }
    else:
        # Mailkit's partially-unsubscribed answer orders its keys differently and sends ID_email as a number.
        body = {
            "error_status": "0",
            "timeout": {"date": result.timeout_date},
            "email": result.email,
            "topics": result.topics,
            "unsubscribe": unsubscribe,
            "ID_email": result.address_id,
        }
    return _json(body)


async def json_api(request: Request) -> Response:
    """The Mailkit JSON API."""
    try:
        call = _parse_json(await read_body(request))
    except BodyTooLarge:
        return _json_error(TOO_LARGE)
    except MalformedBody:
        return _json_error(INVALID_REQUEST)
    try:
        result = await _answer(request, call)
    except MailkitError as exc:
        return _json_error(exc.text)
    return _json_result(result)


# Plain Starlette routes: the endpoints take the bare request and answer errors as data, so FastAPI's
# per-request handling (dependency solving, exit stack, telemetry) bought nothing and cost ≈ 70 µs a call
# (113–140 → 43–49 µs for a malformed call through the whole app, in-process).
router.add_route("/json.fcgi", json_api, methods=["POST"])


# -- XML-RPC ------------------------------------------------------------------------------------
class _Marshaller(xmlrpc.client.Marshaller):
    """Writes integers as <i4>, as Mailkit's answers do."""

    dispatch = dict(xmlrpc.client.Marshaller.dispatch)

    def dump_i4(self, value: int, write: Callable[[str], Any]) -> None:
        if value > xmlrpc.client.MAXINT or value < xmlrpc.client.MININT:
            raise OverflowError("int exceeds XML-RPC limits")
        write(f"<value><i4>{int(value)}</i4></value>\n")

    dispatch[int] = dump_i4  # type: ignore[assignment]


def _xmlrpc(value: Any) -> Response:
    params = _Marshaller("utf-8", allow_none=False).dumps((value,))
    body = '<?xml version="1.0" encoding="utf-8"?>\n<methodResponse>\n' + params + "</methodResponse>\n"
    return Response(body.encode("utf-8"), media_type="text/xml")


def _parse_xmlrpc(body: bytes) -> Call:
    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = DefusedExpatParser(unmarshaller, forbid_dtd=True)
    try:
        parser.feed(body)
        parser.close()
        params = unmarshaller.close()
        method = unmarshaller.getmethodname()
    except Exception as exc:  # expat, defusedxml and unmarshaller errors all mean a malformed call
        raise MalformedBody(str(exc)) from exc
    if not isinstance(method, str) or len(params) < 2:
        raise MalformedBody("not a method call with client_id and client_md5")
    client_id, client_md5, *rest = params
    call = Call(method, client_id, client_md5)
    if rest:
        ident = rest[0]
        if isinstance(ident, str) and not ident.strip().isdigit():
            call.email = ident
        else:
            call.id_email = ident
    if method == UNSUBSCRIBE:
        for name, value in zip(("ID_send_message", "send_optout"), rest[1:3], strict=False):
            call.options[name] = value
        if len(rest) > 3 and isinstance(rest[3], dict):
            call.options.update({k: rest[3].get(k) for k in ("timeout", "timeout_days")})
    return call


def _xmlrpc_result(result: Status | Unsubscribed) -> Response:
    if isinstance(result, Unsubscribed):
        return _xmlrpc(result.address_id)
    if result.unsubscribed:
        return _xmlrpc("TRUE")
    return _xmlrpc(result.topics if result.topics is not None else "FALSE")


async def xmlrpc_api(request: Request) -> Response:
    """The Mailkit XML-RPC API."""
    try:
        call = _parse_xmlrpc(await read_body(request))
    except BodyTooLarge:
        return _xmlrpc(TOO_LARGE)
    except MalformedBody:
        return _xmlrpc(INVALID_REQUEST)
    try:
        result = await _answer(request, call)
    except MailkitError as exc:
        return _xmlrpc(exc.text)
    return _xmlrpc_result(result)


router.add_route("/rpc.fcgi", xmlrpc_api, methods=["POST"])
