"""AllsTechnology mail API: design templates, dynamic content, single sends and the id lists a client needs.

Auth is the `PublicKey` and `SecretKey` headers of the account. Answers are
`{"status":"success","message":…}` or `{"status":"failed","errors":…}` (a string, or field → [messages]
worded as the vendor's Laravel validator words them). HTTP status: 200 for every enveloped answer,
including failures (clients read `status`; PHP clients such as Guzzle would throw on a 4xx), except
missing or wrong keys, which answer 401 with the same envelope (`errors` is the seed's field map for
missing headers, "Unauthorized" for wrong ones), an oversized body, 413, and a credential over
HERALD_RATE_LIMIT_PER_MINUTE, 429 with Retry-After and `errors` "Too Many Attempts." (Laravel's throttle
answer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from herald import ratelimit
from herald.accounts.service import AccountService
from herald.actor import Actor
from herald.delivery.merge import DYNAMIC_CONTENT
from herald.dialects import alls_forms as forms
from herald.dialects.alls_forms import Fields, read_fields
from herald.dialects.common import BodyTooLarge, MalformedBody, container_of, dialect_actor, in_thread
from herald.errors import HeraldError, Invalid, NotAllowed, NotFound, RateLimited, Unauthorized
from herald.sends.models import SingleSend
from herald.sends.schemas import SendIn, SendPatch
from herald.sends.service import SendService
from herald.sends.stats import open_tokens, stats_for
from herald.templates.models import Sender

router = APIRouter(include_in_schema=False)

SOURCE = "alls"
RECORD_NOT_FOUND = "Record not found"
# The design-template and dynamic-content pages capitalise it differently.
RECORD_NOT_FOUND_TITLE = "Record Not Found"
# The create/update fields whose absence the seed reports, in the seed's order.
REQUIRED = (
    "single_send_name",
    "sender_id",
    "subject",
    "preheader",
    "unsubscribe_group_id",
    "schedule_type",
    "recipient_id",
)
INTEGER_FIELDS = ("template_id", "sender_id", "unsubscribe_group_id")
# Service fields that name an object of the account: an unknown id reads "The selected … is invalid."
_ID_FIELDS = {"sender_id", "template_id", "unsubscribe_group_id", "recipient_id", "exclude_specific_recipient_id"}

Work = Callable[[Session, Actor, Fields], Any]


class Failed(Exception):
    """A vendor failure answer (string or field map), raised inside the transaction so it rolls back."""

    def __init__(self, errors: str | dict[str, list[str]]) -> None:
        super().__init__(str(errors))
        self.errors = errors


def success(message: Any) -> JSONResponse:
    """The success envelope."""
    return JSONResponse({"status": "success", "message": message})


def failed(errors: Any, *, status_code: int = 200) -> JSONResponse:
    """The failure envelope."""
    return JSONResponse({"status": "failed", "errors": errors}, status_code=status_code)


def _error_answer(exc: HeraldError) -> JSONResponse:
    if isinstance(exc, NotFound):
        return failed(RECORD_NOT_FOUND)
    if isinstance(exc, Invalid):
        field = exc.field
        message = forms.selected_invalid(field) if field in _ID_FIELDS else forms.sentence(field, exc.reason)
        return failed({field: [message]})
    if isinstance(exc, NotAllowed):
        return failed(f"Not allowed for current status ({exc.current_status})")
    return failed(exc.message)


async def _call(request: Request, work: Work) -> JSONResponse:
    """Read the body, check the keys, run `work` in one transaction and wrap its answer in the envelope."""
    container = container_of(request)
    try:
        fields = await read_fields(request)
    except BodyTooLarge:
        return failed("Request Too Large", status_code=413)
    except MalformedBody:
        return failed("Malformed request body")
    public_key = (request.headers.get("PublicKey") or "").strip()
    secret_key = (request.headers.get("SecretKey") or "").strip()
    missing = {
        name: [forms.required(name)]
        for name, value in (("PublicKey", public_key), ("SecretKey", secret_key))
        if not value
    }
    if missing:
        return failed(missing, status_code=401)

    def run() -> Any:
        with container.transaction() as session:
            auth = AccountService(session, container.cipher).authenticate_alls(public_key, secret_key)
            ratelimit.check(container, auth.credential.id)
            return work(session, dialect_actor(request, auth, SOURCE), fields)

    try:
        message = await in_thread(run)
    except Unauthorized:
        return failed("Unauthorized", status_code=401)
    except RateLimited as exc:
        answer = failed("Too Many Attempts.", status_code=429)
        answer.headers["Retry-After"] = str(int(exc.retry_after or 0) + 1)
        return answer
    except Failed as exc:
        return failed(exc.errors)
    except HeraldError as exc:
        return _error_answer(exc)
    return success(message)


# -- rendering ----------------------------------------------------------------------------------
def laravel_time(value: datetime | None) -> str | None:
    """A timestamp as Laravel serialises model dates: 2023-11-16T05:12:55.000000Z."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.000000Z") if value is not None else None


def _sql_time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None


def _records(session: Session, sends: Sequence[SingleSend]) -> list[dict[str, Any]]:
    """Sends in the seed's singleSends shape, with stats for the whole batch in two queries."""
    from herald.sends.repository import SendRepository

    ids = [s.id for s in sends]
    stats, tokens = stats_for(session, ids), open_tokens(session, ids)
    senders = SendRepository(session).senders_by_id({s.sender_id for s in sends if s.sender_id is not None})
    return [_record(s, senders.get(s.sender_id or 0), stats[s.id].as_dict(), tokens[s.id]) for s in sends]


def _record(send: SingleSend, sender: Sender | None, stats: dict[str, int], tokens: dict[str, str]) -> dict[str, Any]:
    return {
        "id": send.id,
        "user_id": send.user_id,
        "template_id": send.template_id,
        "recipient_id": [{"id": str(t["id"]), "table": t["table"]} for t in send.recipients or []],
        "exclude_specific_recipient_id": [{"id": str(t["id"]), "table": t["table"]} for t in send.exclusions or []],
        "sender_id": send.sender_id,
        "unsubscribe_group_id": send.topic_id,
        "single_send_name": send.name,
        "from_sender": sender.from_email if sender else None,
        "reply_to": (sender.reply_to or sender.from_email) if sender else None,
        "sender_name": sender.from_name if sender else None,
        "sender_address": sender.address if sender else None,
        "subject": send.subject,
        "preheader": send.preheader,
        "schedule_type": send.schedule_type,
        "schedule_date": send.schedule_date or "0000-00-00",
        "schedule_time": send.schedule_time or "00:00:00",
        "status": send.status,
        "utr": send.utr,
        "template_json": send.template_json,
        "template_html": send.template_html,
        "triggered": stats["triggered"],
        "delivered": stats["delivered"],
        "unique_opens": stats["unique_opens"],
        "total_opens": stats["total_opens"],
        "bounces": stats["bounces"],
        "unsubscribes": stats["unsubscribes"],
        "unique_open_token": tokens,
        "sent_at": _sql_time(send.sent_at),
        "created_at": laravel_time(send.created_at),
        "updated_at": laravel_time(send.updated_at),
    }


# -- create / update input ----------------------------------------------------------------------
def _send_fields(fields: Fields, *, errors: dict[str, list[str]]) -> dict[str, Any]:
    """The create/update body as SendIn fields, collecting Laravel-style errors in the seed's order."""
    values: dict[str, Any] = {}
    for name in REQUIRED:
        present = fields.array(name) if name == "recipient_id" else fields.scalar(name)
        if present is None:
            errors[name] = [forms.required(name)]
    for name in INTEGER_FIELDS:
        raw = fields.scalar(name)
        if raw is None or name in errors:
            continue
        if not raw.lstrip("-").isdigit():
            errors.setdefault(name, []).append(forms.must_be_integer(name))
        else:
            values[name] = int(raw)
    raw_type = fields.scalar("schedule_type")
    if raw_type is not None:
        if raw_type.lower() not in forms.BOOLEAN_VALUES:
            errors["schedule_type"] = [forms.must_be_boolean("schedule_type")]
        else:
            values["schedule_type"] = forms.BOOLEAN_VALUES[raw_type.lower()]
            if values["schedule_type"] == 1:
                for name in ("schedule_date", "schedule_time"):
                    if fields.scalar(name) is None:
                        errors[name] = [forms.required_when(name, "schedule_type", "1")]
    for name in ("recipient_id", "exclude_specific_recipient_id"):
        array = fields.array(name)
        if array is not None:
            values[name] = array
    values.setdefault("exclude_specific_recipient_id", [])
    for name in ("single_send_name", "subject", "preheader", "schedule_date", "schedule_time", "timezone"):
        if fields.scalar(name) is not None:
            values[name] = fields.scalar(name)
    for name in ("template_html", "template_json"):
        values[name] = fields.scalar(name)
    values.setdefault("template_id", 1)
    return values


def _validated(model: type[SendIn] | type[SendPatch], values: dict[str, Any]) -> Any:
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "body"
        raise Failed({field: [forms.sentence(field, "is invalid")]}) from None


# -- work -----------------------------------------------------------------------------------------
def _templates(session: Session, actor: Actor, _fields: Fields) -> Any:
    from herald.sends.repository import SendRepository

    rows = SendRepository(session).templates(actor.account_id)
    if not rows:
        raise Failed(RECORD_NOT_FOUND_TITLE)
    return {
        "templates": [
            {
                "id": t.id,
                "template_name": t.name,
                "preview_image": t.preview_image,
                "json_code": t.json,
                "html_code": t.html,
                "is_blank": 1 if t.is_blank else 0,
                "created_at": laravel_time(t.created_at),
                "updated_at": laravel_time(t.updated_at),
            }
            for t in rows
        ]
    }


def _dynamic_content(_session: Session, _actor: Actor, _fields: Fields) -> Any:
    return {"contents": list(DYNAMIC_CONTENT)}


def _list(session: Session, actor: Actor, _fields: Fields) -> Any:
    return {"singleSends": _records(session, SendService(session, actor).all())}


def _details(session: Session, actor: Actor, fields: Fields) -> Any:
    send = SendService(session, actor).by_utr(_utr(fields))
    return {"singleSend": _records(session, [send])}


def _utr(fields: Fields) -> str:
    utr = fields.scalar("utr")
    if utr is None:
        raise Failed(RECORD_NOT_FOUND)
    return utr


def _create(session: Session, actor: Actor, fields: Fields) -> Any:
    errors: dict[str, list[str]] = {}
    values = _send_fields(fields, errors=errors)
    if errors:
        raise Failed(errors)
    send = SendService(session, actor).create(_validated(SendIn, values))
    return {"utr": send.utr}


def _update(session: Session, actor: Actor, fields: Fields) -> Any:
    errors: dict[str, list[str]] = {}
    if fields.scalar("utr") is None:
        errors["utr"] = [forms.required("utr")]
    values = _send_fields(fields, errors=errors)
    if errors:
        raise Failed(errors)
    svc = SendService(session, actor)
    send = svc.by_utr(_utr(fields))
    # The vendor's update replaces the whole send: absent optional fields are cleared.
    values.setdefault("schedule_date", None)
    values.setdefault("schedule_time", None)
    svc.update(send, _validated(SendPatch, values))
    return {"utr": send.utr}


def _duplicate(session: Session, actor: Actor, fields: Fields) -> Any:
    svc = SendService(session, actor)
    svc.duplicate(svc.by_utr(_utr(fields)))
    return "Duplicated Successfully"


def _delete(session: Session, actor: Actor, fields: Fields) -> Any:
    svc = SendService(session, actor)
    svc.delete(svc.by_utr(_utr(fields)))
    return "Deleted Successfully"


def _bulk_delete(session: Session, actor: Actor, fields: Fields) -> Any:
    ids = fields.array("strIds")
    if ids is None:
        raise Failed({"strIds": [forms.required("strIds")]})
    if not fields.is_array("strIds"):
        raise Failed({"strIds": [forms.must_be_array("strIds")]})
    numeric = [int(v) for v in ids if v.isdigit()]
    SendService(session, actor).bulk_delete(numeric)
    return "Deleted Successfully"


# -- sibling lists: every record of the account, unpaginated --------------------------------------
def _catalogue(key: str, rows: Callable[[Any, int], Sequence[Any]], render: Callable[[Any], dict[str, Any]]) -> Work:
    def work(session: Session, actor: Actor, _fields: Fields) -> Any:
        from herald.sends.repository import SendRepository

        return {key: [render(r) for r in rows(SendRepository(session), actor.account_id)]}

    return work


def _contact_name(c: Any) -> str:
    full = " ".join(p for p in (c.first_name, c.last_name) if p)
    return full or str(c.email)


_unsubscribe_groups = _catalogue(
    "unsubscribeGroups",
    lambda repo, aid: repo.topics(aid),
    lambda t: {
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "status": 1 if t.enabled else 0,
        "created_at": laravel_time(t.created_at),
    },
)
_global_unsubscribes = _catalogue(
    "globalUnsubscribes",
    lambda repo, aid: repo.opted_out_addresses(aid),
    lambda a: {
        "id": a.id,
        "name": a.email,
        "email": a.email,
        "until": _sql_time(a.opted_out_until),
        "created_at": laravel_time(a.updated_at),
    },
)
_segments = _catalogue(
    "segments",
    lambda repo, aid: repo.segments(aid),
    lambda s: {
        "id": s.id,
        "name": s.name,
        "recipient_id": f"segments_{s.id}",
        "created_at": laravel_time(s.created_at),
    },
)
_contact_types = _catalogue(
    "contactTypes",
    lambda repo, aid: repo.contact_types(aid),
    lambda t: {
        "id": t.id,
        "name": t.name,
        "recipient_id": f"contacts_{t.id}",
        "created_at": laravel_time(t.created_at),
    },
)
_contacts = _catalogue(
    "contacts",
    lambda repo, aid: repo.contacts(aid),
    lambda c: {
        "id": c.id,
        "name": _contact_name(c),
        "email": c.email,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "contact_type_id": c.contact_type_id,
        "created_at": laravel_time(c.created_at),
        "updated_at": laravel_time(c.updated_at),
    },
)
_senders = _catalogue(
    "senders",
    lambda repo, aid: repo.senders(aid),
    lambda s: {
        "id": s.id,
        "name": s.from_name or s.from_email,
        "from_email": s.from_email,
        "reply_to": s.reply_to or s.from_email,
        "sender_name": s.from_name,
        "sender_address": s.address,
        "created_at": laravel_time(s.created_at),
    },
)


# -- routes -------------------------------------------------------------------------------------
@router.get("/api/get-design/template")
async def get_design_templates(request: Request) -> JSONResponse:
    """Built-in design templates and the account's own."""
    return await _call(request, _templates)


@router.get("/api/get-dynamic/content")
async def get_dynamic_content(request: Request) -> JSONResponse:
    """The merge tags a template may use."""
    return await _call(request, _dynamic_content)


@router.get("/api/single-send/list")
async def list_single_sends(request: Request) -> JSONResponse:
    """Every single send of the account with its stats."""
    return await _call(request, _list)


@router.get("/api/single-send/details")
async def single_send_details(request: Request) -> JSONResponse:
    """One send by utr, as a one-item list (as the vendor answers it)."""
    return await _call(request, _details)


@router.post("/api/single/send/create")
async def create_single_send(request: Request) -> JSONResponse:
    """Create a send; schedule_type 0 hands it to the sending pipeline at once."""
    return await _call(request, _create)


@router.post("/api/single/send/update")
async def update_single_send(request: Request) -> JSONResponse:
    """Replace a send's fields (only before it runs)."""
    return await _call(request, _update)


@router.api_route("/api/single/send/duplicate", methods=["GET", "POST"])
async def duplicate_single_send(request: Request) -> JSONResponse:
    """Copy a send's content into a new draft (documented as GET, called with POST: both work)."""
    return await _call(request, _duplicate)


@router.delete("/api/single/send/delete")
async def delete_single_send(request: Request) -> JSONResponse:
    """Delete one send by utr."""
    return await _call(request, _delete)


@router.post("/api/single/send/bulk-delete")
async def bulk_delete_single_sends(request: Request) -> JSONResponse:
    """Delete the account's sends among the numeric ids in strIds."""
    return await _call(request, _bulk_delete)


@router.get("/api/unsubscribes-groups")
async def unsubscribe_groups(request: Request) -> JSONResponse:
    """The account's unsubscribe groups (topics): the ids for unsubscribe_group_id."""
    return await _call(request, _unsubscribe_groups)


@router.get("/api/global-unsubscribes")
async def global_unsubscribes(request: Request) -> JSONResponse:
    """Addresses unsubscribed from everything."""
    return await _call(request, _global_unsubscribes)


@router.get("/api/segment/list")
async def segment_list(request: Request) -> JSONResponse:
    """The account's segments: the ids for segments_{id} targets."""
    return await _call(request, _segments)


@router.get("/api/contacts/list")
async def contact_list(request: Request) -> JSONResponse:
    """Every contact of the account."""
    return await _call(request, _contacts)


@router.get("/api/contacts-type")
async def contact_types(request: Request) -> JSONResponse:
    """The account's contact types: the ids for contacts_{type} targets."""
    return await _call(request, _contact_types)


@router.get("/api/sender/list")
async def sender_list(request: Request) -> JSONResponse:
    """The account's senders: the ids for sender_id."""
    return await _call(request, _senders)
