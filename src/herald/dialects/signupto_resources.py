"""Sign-Up.to resources mapped onto the core services: optinAutomation, emailMessage, list, folder,
subscriber, subscription and emailOptIn. No business rule lives here; each handler turns parameters into
service calls and objects into Sign-Up.to's representation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.contacts.models import CONTACT_FIELDS, Contact
from herald.contacts.service import ContactService
from herald.container import Container
from herald.dialects.signupto_repository import SignuptoRepository
from herald.dialects.signupto_wire import (
    WireError,
    as_bool,
    as_ids,
    as_int,
    as_nullable_int,
    as_str,
    found,
    list_options,
    ok,
)
from herald.errors import Invalid, NotAllowed, NotFound
from herald.lists.models import Category, MailingList, Subscription
from herald.lists.service import ListService
from herald.optin.models import OptinRecord
from herald.optin.service import MISSING, OptinRuleService, RuleFilter, rule_dict, unix
from herald.optin.trigger import request_optin
from herald.templates.models import Message
from herald.templates.service import MessageService


@dataclass
class Call:
    """One Sign-Up.to request inside its transaction."""

    session: Session
    actor: Actor
    container: Container
    method: str
    params: dict[str, Any]

    def lists(self) -> ListService:
        """The list service for this caller."""
        return ListService(self.session, self.actor, hash_key=self.container.hash_key)


Handler = Callable[[Call], JSONResponse]


def _unsupported(call: Call) -> JSONResponse:
    raise WireError(405, f"Method {call.method} is not supported on this resource")


# -- optinAutomation --------------------------------------------------------------------------
def optin_automation(call: Call) -> JSONResponse:
    """GET/POST/PUT/DELETE /v1/optinAutomation."""
    svc = OptinRuleService(call.session, call.actor)
    p = call.params
    if call.method == "GET":
        opts = list_options(p, ("id", "name", "cdate"))
        list_filter: Any = as_nullable_int(p, "list_id") if "list_id" in p else MISSING
        filters = RuleFilter(
            ids=as_ids(p),
            list_id=list_filter,
            name=as_str(p, "name"),
            paused=as_bool(p, "paused"),
            user_id=as_int(p, "user_id"),
        )
        rules, total = svc.search(filters, sort=opts.sort, reverse=opts.reverse, start=opts.start, count=opts.count)
        return found([rule_dict(r) for r in rules], total, opts)
    if call.method == "POST":
        rule = svc.create(
            list_id=as_nullable_int(p, "list_id") if "list_id" in p else MISSING,
            message_id=as_int(p, "message_id", required=True),
            name=as_str(p, "name"),
            paused=bool(as_bool(p, "paused")),
            summary=as_str(p, "summary"),
        )
        return ok(rule_dict(rule), status=202)
    rule_id = as_int(p, "id", required=True)
    assert rule_id is not None
    if call.method == "PUT":
        changes: dict[str, Any] = {}
        if "list_id" in p:
            changes["list_id"] = as_nullable_int(p, "list_id")
        if "message_id" in p:
            changes["message_id"] = as_int(p, "message_id", required=True)
        if "name" in p:
            changes["name"] = as_str(p, "name")
        if "paused" in p:
            changes["paused"] = as_bool(p, "paused")
        if "summary" in p:
            changes["summary"] = as_str(p, "summary")
        if "user_id" in p:
            changes["user_id"] = as_int(p, "user_id")
        return ok(rule_dict(svc.update(rule_id, changes)))
    if call.method == "DELETE":
        data = rule_dict(svc.get(rule_id))
        svc.delete(rule_id)
        return ok(data)
    return _unsupported(call)


# -- emailMessage -----------------------------------------------------------------------------
def message_dict(m: Message) -> dict[str, Any]:
    """The Sign-Up.to emailMessage object."""
    return {
        "id": m.id,
        "name": m.name,
        "subject": m.subject,
        "html": m.html,
        "text": m.text,
        "customoptin": m.customoptin,
        "editable": not m.locked,
        "folder_id": m.category_id,
        "sender_id": m.sender_id,
        "user_id": m.user_id,
        "cdate": unix(m.created_at),
        "mdate": unix(m.updated_at),
    }


def email_message(call: Call) -> JSONResponse:
    """GET/POST/PUT/DELETE /v1/emailMessage (customoptin messages are the opt-in emails)."""
    svc = MessageService(call.session, call.actor)
    p = call.params
    if call.method == "GET":
        opts = list_options(p, ("id", "name", "cdate"))
        stmt = svc.messages_query()
        if (ids := as_ids(p)) is not None:
            stmt = stmt.where(Message.id.in_(ids))
        if (name := as_str(p, "name")) is not None:
            stmt = stmt.where(Message.name == name)
        if (custom := as_bool(p, "customoptin")) is not None:
            stmt = stmt.where(Message.customoptin.is_(custom))
        if (folder := as_int(p, "folder_id")) is not None:
            stmt = stmt.where(Message.category_id == folder)
        col = {"id": Message.id, "name": Message.name, "cdate": Message.created_at}[opts.sort]
        return _window(call, stmt, col, Message.id, opts, message_dict)
    if call.method == "POST":
        msg = svc.create(
            as_str(p, "name") or "",
            as_str(p, "subject") or "",
            html=as_str(p, "html") or "",
            text=as_str(p, "text") or "",
            customoptin=bool(as_bool(p, "customoptin")),
            sender_id=as_int(p, "sender_id"),
            category_id=as_int(p, "folder_id"),
        )
        return ok(message_dict(msg), status=202)
    message_id = as_int(p, "id", required=True)
    assert message_id is not None
    if call.method == "PUT":
        msg = svc.update(
            message_id,
            name=as_str(p, "name"),
            subject=as_str(p, "subject"),
            html=as_str(p, "html"),
            text=as_str(p, "text"),
            customoptin=as_bool(p, "customoptin"),
            sender_id=as_int(p, "sender_id"),
            category_id=as_int(p, "folder_id"),
        )
        return ok(message_dict(msg))
    if call.method == "DELETE":
        return ok(message_dict(svc.delete(message_id)))
    return _unsupported(call)


# -- list and folder --------------------------------------------------------------------------
def list_dict(m: MailingList) -> dict[str, Any]:
    """The Sign-Up.to list object."""
    return {
        "id": m.id,
        "name": m.name,
        "folder_id": m.category_id,
        "double_opt_in": m.double_opt_in,
        "cdate": unix(m.created_at),
        "mdate": unix(m.created_at),
    }


def folder_dict(c: Category) -> dict[str, Any]:
    """The Sign-Up.to folder object (a category)."""
    return {"id": c.id, "name": c.name, "cdate": unix(c.created_at), "mdate": unix(c.created_at)}


def list_resource(call: Call) -> JSONResponse:
    """GET/POST /v1/list."""
    svc = call.lists()
    p = call.params
    if call.method == "GET":
        opts = list_options(p, ("id", "name", "cdate"))
        stmt = svc.lists_query(category_id=as_int(p, "folder_id"))
        if (ids := as_ids(p)) is not None:
            stmt = stmt.where(MailingList.id.in_(ids))
        if (name := as_str(p, "name")) is not None:
            stmt = stmt.where(MailingList.name == name)
        col = {"id": MailingList.id, "name": MailingList.name, "cdate": MailingList.created_at}[opts.sort]
        return _window(call, stmt, col, MailingList.id, opts, list_dict)
    if call.method == "POST":
        created = svc.create_list(
            as_str(p, "name") or "",
            category_id=as_int(p, "folder_id"),
            double_opt_in=bool(as_bool(p, "double_opt_in")),
        )
        return ok(list_dict(created), status=202)
    return _unsupported(call)


def folder_resource(call: Call) -> JSONResponse:
    """GET/POST /v1/folder."""
    svc = call.lists()
    p = call.params
    if call.method == "GET":
        opts = list_options(p, ("id", "name", "cdate"))
        stmt = svc.categories_query()
        if (ids := as_ids(p)) is not None:
            stmt = stmt.where(Category.id.in_(ids))
        if (name := as_str(p, "name")) is not None:
            stmt = stmt.where(Category.name == name)
        col = {"id": Category.id, "name": Category.name, "cdate": Category.created_at}[opts.sort]
        return _window(call, stmt, col, Category.id, opts, folder_dict)
    if call.method == "POST":
        return ok(folder_dict(svc.create_category(as_str(p, "name") or "")), status=202)
    return _unsupported(call)


# -- subscriber and subscription --------------------------------------------------------------
def subscriber_dict(c: Contact) -> dict[str, Any]:
    """The Sign-Up.to subscriber object (a contact)."""
    out: dict[str, Any] = {"id": c.id, "email": c.email}
    for name in CONTACT_FIELDS:
        value = getattr(c, name)
        if value is not None:
            out[name] = value
    out["cdate"], out["mdate"] = unix(c.created_at), unix(c.updated_at)
    return out


def subscriber(call: Call) -> JSONResponse:
    """GET/POST /v1/subscriber: POST creates the contact of an email, or finds the existing one."""
    svc = ContactService(call.session, call.actor, hash_key=call.container.hash_key)
    p = call.params
    if call.method == "GET":
        opts = list_options(p, ("id", "email", "cdate"))
        email = as_str(p, "email")
        stmt = svc.query(email=email)
        if (ids := as_ids(p)) is not None:
            stmt = stmt.where(Contact.id.in_(ids))
        col = {"id": Contact.id, "email": Contact.email, "cdate": Contact.created_at}[opts.sort]
        return _window(call, stmt, col, Contact.id, opts, subscriber_dict)
    if call.method == "POST":
        email = as_str(p, "email")
        if not email:
            raise Invalid("email", "is required")
        existing = svc.find_by_email(email)
        if existing is not None:
            return ok(subscriber_dict(existing), status=202)
        values: dict[str, Any] = {k: v for k, v in p.items() if k in CONTACT_FIELDS}
        extra = {k: str(v) for k, v in p.items() if k not in CONTACT_FIELDS and k != "email" and v is not None}
        if extra:
            values["fields"] = extra
        return ok(subscriber_dict(svc.create(email, values)), status=202)
    return _unsupported(call)


def _subscription_dict(sub: Subscription, email: str, contact_id: int | None) -> dict[str, Any]:
    return {
        "id": sub.id,
        "subscriber_id": contact_id,
        "list_id": sub.list_id,
        "email": email,
        "status": sub.status,
        "confirmed": sub.status == "active",
        "cdate": unix(sub.created_at),
        "mdate": unix(sub.updated_at),
    }


def _contact_email(call: Call, subscriber_id: int) -> str:
    try:
        return ContactService(call.session, call.actor).get(subscriber_id).email
    except NotFound:
        raise Invalid("subscriber_id", f"subscriber {subscriber_id} not found") from None


def _one_subscription(call: Call, sub: Subscription) -> dict[str, Any]:
    repo = SignuptoRepository(call.session)
    email = repo.email_of_address(sub.address_id) or ""
    return _subscription_dict(sub, email, repo.contact_id_for(call.actor.account_id, email))


def subscription(call: Call) -> JSONResponse:
    """GET/POST/DELETE /v1/subscription (subscriber_id + list_id)."""
    svc = call.lists()
    p = call.params
    repo = SignuptoRepository(call.session)
    if call.method == "GET":
        opts = list_options(p, ("id", "cdate"))
        stmt = repo.subscriptions_query(call.actor.account_id)
        if (ids := as_ids(p)) is not None:
            stmt = stmt.where(Subscription.id.in_(ids))
        if (list_id := as_int(p, "list_id")) is not None:
            stmt = stmt.where(Subscription.list_id == list_id)
        if (sid := as_int(p, "subscriber_id")) is not None:
            stmt = stmt.where(Contact.id == sid)
        col = {"id": Subscription.id, "cdate": Subscription.created_at}[opts.sort]
        order = [col.desc(), Subscription.id.desc()] if opts.reverse else [col, Subscription.id]
        rows, total = repo.window(stmt, order, start=opts.start, count=opts.count)
        return found([_subscription_dict(s, e, c) for s, e, c in rows], total, opts)
    if call.method == "POST":
        subscriber_id = as_int(p, "subscriber_id", required=True)
        list_id = as_int(p, "list_id", required=True)
        assert subscriber_id is not None and list_id is not None
        confirmed = as_bool(p, "confirmed")
        status = "unconfirmed" if confirmed is False else "active"
        # Seed 004: the opt-in email is triggered by emailOptIn, not by creating the subscription.
        sub = svc.subscribe(list_id, _contact_email(call, subscriber_id), status=status, send_optin=False)
        return ok(_one_subscription(call, sub), status=202)
    if call.method == "DELETE":
        sub_id = as_int(p, "id", required=True)
        assert sub_id is not None
        sub = svc.get_subscription(sub_id)
        email = repo.email_of_address(sub.address_id) or ""
        return ok(_one_subscription(call, svc.unsubscribe(sub.list_id, email)))
    return _unsupported(call)


# -- emailOptIn -------------------------------------------------------------------------------
def _record_dict(rec: OptinRecord, list_id: int, contact_id: int | None) -> dict[str, Any]:
    return {
        "id": rec.id,
        "subscription_id": rec.subscription_id,
        "subscriber_id": contact_id,
        "list_id": list_id,
        "message_id": rec.message_id,
        "completed": rec.completed,
        "confirmed": rec.confirmed,
        "error": rec.error,
        "errortype": rec.errortype,
        "cdate": unix(rec.created_at),
        "mdate": unix(rec.confirmed_at or rec.sent_at or rec.created_at),
    }


def email_optin(call: Call) -> JSONResponse:
    """GET/POST /v1/emailOptIn: POST sends (or refuses, with the reason) an opt-in email."""
    p = call.params
    repo = SignuptoRepository(call.session)
    if call.method == "GET":
        opts = list_options(p, ("id", "cdate"))
        stmt = repo.records_query(call.actor.account_id)
        if (ids := as_ids(p)) is not None:
            stmt = stmt.where(OptinRecord.id.in_(ids))
        if (sub_id := as_int(p, "subscription_id")) is not None:
            stmt = stmt.where(OptinRecord.subscription_id == sub_id)
        col = {"id": OptinRecord.id, "cdate": OptinRecord.created_at}[opts.sort]
        order = [col.desc(), OptinRecord.id.desc()] if opts.reverse else [col, OptinRecord.id]
        rows, total = repo.window(stmt, order, start=opts.start, count=opts.count)
        return found([_record_dict(r, lid, cid) for r, lid, cid in rows], total, opts)
    if call.method != "POST":
        return _unsupported(call)
    svc = call.lists()
    sub_id = as_int(p, "subscription_id")
    if sub_id is not None:
        sub = svc.get_subscription(sub_id)
        email = repo.email_of_address(sub.address_id) or ""
    else:
        subscriber_id = as_int(p, "subscriber_id", required=True)
        list_id = as_int(p, "list_id", required=True)
        assert subscriber_id is not None and list_id is not None
        email = _contact_email(call, subscriber_id)
        existing = svc.find_subscription(list_id, email)
        sub = existing if existing is not None else svc.subscribe(list_id, email, status="unconfirmed")
        if existing is None:
            return _record_answer(call, sub, email)
    if sub.status == "active":
        raise NotAllowed("The subscription is already confirmed", current_status="active")
    if sub.status == "unsubscribed":
        sub = svc.subscribe(sub.list_id, email, status="unconfirmed")
        return _record_answer(call, sub, email)
    request_optin(call.session, call.actor, sub)
    return _record_answer(call, sub, email)


def _record_answer(call: Call, sub: Subscription, email: str) -> JSONResponse:
    repo = SignuptoRepository(call.session)
    rec = repo.latest_record(sub.id)
    if rec is None:
        raise NotAllowed("No opt-in email was requested", current_status=sub.status)
    return ok(_record_dict(rec, sub.list_id, repo.contact_id_for(call.actor.account_id, email)), status=202)


# -- helpers ----------------------------------------------------------------------------------
def _window(
    call: Call, stmt: Any, col: Any, id_col: Any, opts: Any, render: Callable[[Any], dict[str, Any]]
) -> JSONResponse:
    order = [col.desc(), id_col.desc()] if opts.reverse else [col, id_col]
    rows, total = SignuptoRepository(call.session).window(stmt, order, start=opts.start, count=opts.count)
    return found([render(r) for r in rows], total, opts)


RESOURCES: dict[str, Handler] = {
    "optinautomation": optin_automation,
    "emailmessage": email_message,
    "list": list_resource,
    "folder": folder_resource,
    "subscriber": subscriber,
    "subscription": subscription,
    "emailoptin": email_optin,
}
