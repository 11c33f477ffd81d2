"""The single-send editor: what its pickers offer, its form read into the service's shapes, the eligible count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from pydantic import ValidationError
from sqlalchemy.orm import Session

from herald.accounts.repository import AccountRepository
from herald.actor import Actor
from herald.consent.models import Topic
from herald.contacts.models import ContactType, Segment
from herald.db.base import utcnow
from herald.delivery.merge import DYNAMIC_CONTENT
from herald.errors import Invalid, NotFound
from herald.lists.models import MailingList
from herald.sends.audience import audience_counts, target_conditions
from herald.sends.models import SingleSend
from herald.sends.repository import SendRepository
from herald.sends.schemas import SendIn, SendPatch, target_strings
from herald.sends.service import parse_targets
from herald.templates.models import Sender, Template
from herald.ui.campaigns.repository import CampaignPagesRepository

# How the editor's "when" choice maps onto schedule_type (None keeps a draft).
WHEN_CHOICES = {"draft": None, "now": 0, "at": 1}


@cache
def timezones() -> list[str]:
    """Every IANA zone name, UTC first, for the schedule picker."""
    return ["UTC", *sorted(z for z in available_timezones() if z != "UTC" and "/" in z)]


@dataclass
class Pickers:
    """What the editor's selects and checkboxes offer."""

    templates: Sequence[Template]
    senders: Sequence[Sender]
    topics: Sequence[Topic]
    lists: Sequence[MailingList]
    contact_types: Sequence[ContactType]
    segments: Sequence[Segment]
    merge_tags: Sequence[str] = DYNAMIC_CONTENT
    zones: Sequence[str] = field(default_factory=timezones)


def pickers(session: Session, account_id: int) -> Pickers:
    """The account's templates (built-in first), senders, topics, lists, contact types and segments."""
    repo = SendRepository(session)
    lists = CampaignPagesRepository(session).lists(account_id)
    return Pickers(
        templates=repo.templates(account_id),
        senders=repo.senders(account_id),
        topics=repo.topics(account_id),
        lists=lists,
        contact_types=repo.contact_types(account_id),
        segments=repo.segments(account_id),
    )


def form_values(send: SingleSend | None) -> dict[str, Any]:
    """An existing send (or a new one) as the editor's field values."""
    if send is None:
        return {"template_id": 2, "recipient_id": [], "exclude_specific_recipient_id": [], "when": "draft"}
    when = "draft" if send.status == 0 else ("at" if send.schedule_type == 1 else "now")
    return {
        "single_send_name": send.name,
        "subject": send.subject,
        "preheader": send.preheader,
        "sender_id": send.sender_id,
        "template_id": send.template_id,
        "template_html": send.template_html or "",
        "unsubscribe_group_id": send.topic_id,
        "list_id": send.list_id,
        "recipient_id": target_strings(send.recipients),
        "exclude_specific_recipient_id": target_strings(send.exclusions),
        "when": when,
        "schedule_date": send.schedule_date or "",
        "schedule_time": (send.schedule_time or "")[:5],
        "timezone": send.timezone,
    }


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _int(form: Any, name: str) -> int | None:
    text = _text(form, name)
    if not text:
        return None
    if not text.isdigit():
        raise Invalid(name, "must be a number")
    return int(text)


def _list(form: Any, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def read_form(form: Any) -> dict[str, Any]:
    """The editor's form as the create/update body fields (HTML kept as typed, blank HTML meaning the design's)."""
    when = _text(form, "when") or "draft"
    if when not in WHEN_CHOICES:
        raise Invalid("when", "must be draft, now or at")
    html = form.get("template_html")
    return {
        "single_send_name": _text(form, "single_send_name"),
        "subject": _text(form, "subject"),
        "preheader": _text(form, "preheader"),
        "sender_id": _int(form, "sender_id"),
        "template_id": _int(form, "template_id") or 1,
        "template_html": html if isinstance(html, str) and html.strip() else None,
        "unsubscribe_group_id": _int(form, "unsubscribe_group_id"),
        "list_id": _int(form, "list_id"),
        "recipient_id": _list(form, "recipient_id"),
        "exclude_specific_recipient_id": _list(form, "exclude_specific_recipient_id"),
        "schedule_type": WHEN_CHOICES[when],
        "schedule_date": _text(form, "schedule_date") or None,
        "schedule_time": _text(form, "schedule_time") or None,
        "timezone": _text(form, "timezone") or "UTC",
    }


def as_send_in(fields: dict[str, Any]) -> SendIn:
    """The create body; a missing field becomes Invalid naming it (as the service's own errors do)."""
    if fields.get("sender_id") is None:
        raise Invalid("sender_id", "choose a sender (add one under Senders first)")
    if not fields.get("recipient_id"):
        raise Invalid("recipient_id", "choose at least one contact type or segment")
    try:
        return SendIn(**fields)
    except ValidationError as exc:
        raise _invalid(exc) from None


def as_patch(fields: dict[str, Any]) -> SendPatch:
    """The update body with every editor field set (the editor always shows them all)."""
    as_send_in(fields)  # the same required fields as a create
    try:
        return SendPatch(**fields)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first.get("loc") else "form"
    return Invalid(name, str(first.get("msg", "is not valid")).lower())


@dataclass
class Audience:
    """The editor's count: who the targets reach, who may be mailed now, and why the others may not."""

    reached: int
    eligible: int
    skipped: dict[str, int]
    error: str | None = None


def eligible_count(session: Session, actor: Actor, fields: dict[str, Any]) -> Audience:
    """What launching now would do with these targets, by the consent eligibility rule (nothing is written)."""
    aid = actor.account_id
    try:
        recipients = parse_targets(fields.get("recipient_id") or [], field="recipient_id")
        exclusions = parse_targets(fields.get("exclude_specific_recipient_id") or [], field="exclusions")
        target_conditions(session, aid, recipients + exclusions)
    except (Invalid, NotFound) as exc:
        return Audience(0, 0, {}, error=str(exc))
    repo = SendRepository(session)
    topic_id, list_id = fields.get("unsubscribe_group_id"), fields.get("list_id")
    if topic_id is not None and repo.topic(aid, topic_id) is None:
        return Audience(0, 0, {}, error="unknown unsubscribe group")
    if list_id is not None and repo.mailing_list(aid, list_id) is None:
        return Audience(0, 0, {}, error="unknown list")
    account = AccountRepository(session).get_account(aid)
    reached, eligible, skipped = audience_counts(
        session,
        account_id=aid,
        recipients=recipients,
        exclusions=exclusions,
        topic_id=topic_id,
        list_id=list_id,
        require_optin=bool(account and account.require_optin),
        now=utcnow(),
    )
    return Audience(reached, eligible, skipped)
