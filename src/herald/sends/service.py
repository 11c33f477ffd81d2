"""Single sends: their lifecycle (initiate → ready → running → completed, plus pause and cancel) and launch.

Edits are allowed only before a send runs. Launching moves a ready send to running and materialises
its audience (one delivery per recipient, ineligible ones `suppressed` with the reason) in the same
transaction; the delivery pipeline sends the queued ones and completes the send.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from herald.accounts.repository import AccountRepository
from herald.actor import Actor
from herald.db.base import utcnow
from herald.errors import Invalid, NotAllowed, NotFound
from herald.sends.audience import audience_rows
from herald.sends.models import STATUS_COMPLETED, STATUS_INITIATE, STATUS_READY, STATUS_RUNNING, SingleSend
from herald.sends.repository import SendRepository
from herald.sends.schemas import STATUS_NAMES, ScheduleIn, SendIn, SendPatch
from herald.wake import wake_after_commit

# A schedule this far in the past is a mistake (a wrong year would mail everyone at once), not "now".
PAST_TOLERANCE = timedelta(minutes=1)
# Fields copied by duplicate: the content, never the state, stats or deliveries.
_CONTENT = (
    "name",
    "template_id",
    "template_html",
    "template_json",
    "sender_id",
    "topic_id",
    "list_id",
    "subject",
    "preheader",
    "recipients",
    "exclusions",
    "schedule_type",
    "schedule_date",
    "schedule_time",
    "timezone",
)


def parse_targets(values: Sequence[str], *, field: str) -> list[dict[str, Any]]:
    """Recipient strings ("contacts_3") as stored targets, deduplicated; Invalid(field) for a bad one."""
    from herald.contacts.targets import parse_target

    out: list[dict[str, Any]] = []
    for value in values:
        try:
            table, ident = parse_target(value)
        except Invalid as exc:
            raise Invalid(field, exc.reason) from None
        target = {"id": str(ident), "table": table}
        if target not in out:
            out.append(target)
    return out


def local_to_utc(day: str | None, at: str | None, tz: str) -> datetime:
    """A local `Y-m-d` date and `HH:MM[:SS]` time in an IANA zone, as a UTC instant."""
    if not day:
        raise Invalid("schedule_date", "is required when schedule_type is 1")
    if not at:
        raise Invalid("schedule_time", "is required when schedule_type is 1")
    try:
        d = date.fromisoformat(day.strip())
    except ValueError:
        raise Invalid("schedule_date", "must be a date as Y-m-d") from None
    try:
        t = time.fromisoformat(at.strip())
    except ValueError:
        raise Invalid("schedule_time", "must be a time as HH:MM or HH:MM:SS") from None
    return datetime.combine(d, t.replace(tzinfo=None), tzinfo=zone(tz)).astimezone(UTC)


def zone(tz: str) -> ZoneInfo:
    """The IANA time zone; Invalid('timezone') for an unknown name."""
    try:
        return ZoneInfo(tz.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("timezone", f"unknown time zone {tz!r}") from None


class SendService:
    """Business rules of single sends for one account."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self.repo = SendRepository(session)
        self.accounts = AccountRepository(session)

    # -- reading --------------------------------------------------------------------------------
    def get(self, send_id: int) -> SingleSend:
        """A live send of the account; NotFound otherwise (another account's id included)."""
        send = self.repo.get(self.actor.account_id, send_id)
        if send is None:
            raise NotFound("single send", send_id)
        return send

    def by_utr(self, utr: str) -> SingleSend:
        """A live send of the account by utr; NotFound otherwise."""
        send = self.repo.by_utr(self.actor.account_id, utr.strip())
        if send is None:
            raise NotFound("single send", utr)
        return send

    def all(self) -> Sequence[SingleSend]:
        """Every live send of the account, oldest first."""
        return self.repo.all_sends(self.actor.account_id)

    # -- writing --------------------------------------------------------------------------------
    def create(self, data: SendIn) -> SingleSend:
        """A new send: a draft without schedule_type, otherwise ready (now or at its scheduled time)."""
        send = SingleSend(
            account_id=self.actor.account_id,
            user_id=self._owner_id(),
            utr=str(uuid.uuid4()),
            status=STATUS_INITIATE,
            recipients=[],
            exclusions=[],
            skipped={},
        )
        self._apply(send, data.model_dump())
        self._apply_schedule(send, data.schedule_type, data.schedule_date, data.schedule_time, data.timezone)
        return self.repo.add(send)

    def update(self, send: SingleSend, patch: SendPatch) -> SingleSend:
        """Change the fields given; only before the send runs (NotAllowed with its status otherwise)."""
        send = self._editable(send)
        fields = {k: getattr(patch, k) for k in patch.model_fields_set}
        self._apply(send, fields)
        scheduling = {"schedule_type", "schedule_date", "schedule_time", "timezone"} & patch.model_fields_set
        if scheduling:
            kind = patch.schedule_type if "schedule_type" in patch.model_fields_set else send.schedule_type
            if "schedule_type" not in patch.model_fields_set and send.status == STATUS_INITIATE:
                kind = None  # changing a draft's date alone does not schedule it
            self._apply_schedule(
                send,
                kind,
                patch.schedule_date if "schedule_date" in patch.model_fields_set else send.schedule_date,
                patch.schedule_time if "schedule_time" in patch.model_fields_set else send.schedule_time,
                patch.timezone or send.timezone,
            )
        self.session.flush()
        return send

    def schedule(self, send: SingleSend, data: ScheduleIn) -> SingleSend:
        """Make a draft (or a cancelled or rescheduled send) ready: now, or at a local date and time."""
        send = self._editable(send)
        self._apply_schedule(
            send,
            data.schedule_type,
            data.schedule_date,
            data.schedule_time,
            data.timezone or send.timezone,
        )
        self.session.flush()
        return send

    def duplicate(self, send: SingleSend) -> SingleSend:
        """A new draft with the same content (new utr; never the stats, state or deliveries)."""
        copy = SingleSend(
            account_id=send.account_id,
            user_id=self._owner_id(),
            utr=str(uuid.uuid4()),
            status=STATUS_INITIATE,
            skipped={},
            **{name: getattr(send, name) for name in _CONTENT},
        )
        copy.recipients = [dict(t) for t in send.recipients or []]
        copy.exclusions = [dict(t) for t in send.exclusions or []]
        return self.repo.add(copy)

    def delete(self, send: SingleSend) -> None:
        """Soft-delete a send (a running one is cancelled first; its ledger stays)."""
        send = self.repo.lock(send)
        if send.status == STATUS_RUNNING:
            self._stop(send)
        send.deleted_at = utcnow()
        self.session.flush()

    def bulk_delete(self, ids: Sequence[int]) -> int:
        """Soft-delete the account's sends among `ids`; NotFound when none of them is one."""
        sends = self.repo.many(self.actor.account_id, list(dict.fromkeys(ids)))
        if not sends:
            raise NotFound("single send")
        for send in sends:
            self.delete(send)
        return len(sends)

    def cancel(self, send: SingleSend) -> SingleSend:
        """Stop a send: a ready one goes back to initiate; a running one stops and its unsent mails are withdrawn."""
        send = self.repo.lock(send)
        if send.status == STATUS_READY:
            send.status, send.scheduled_at, send.cancelled, send.paused = STATUS_INITIATE, None, True, False
        elif send.status == STATUS_RUNNING:
            self._stop(send)
        else:
            raise self._refused("cancel", send)
        self.session.flush()
        return send

    def pause(self, send: SingleSend) -> SingleSend:
        """Hold a ready or running send (the launcher and the pipeline leave it alone until resumed)."""
        send = self.repo.lock(send)
        if send.status not in (STATUS_READY, STATUS_RUNNING) or send.paused:
            raise self._refused("pause", send)
        send.paused = True
        self.session.flush()
        return send

    def resume(self, send: SingleSend) -> SingleSend:
        """Let a paused send continue."""
        send = self.repo.lock(send)
        if not send.paused:
            raise self._refused("resume", send)
        send.paused = False
        self.session.flush()
        wake_after_commit(self.session)
        return send

    # -- launch (the worker's launcher calls this) ----------------------------------------------
    def launch(self, send: SingleSend, *, now: datetime | None = None) -> SingleSend:
        """Move a ready send to running and create its deliveries, in the caller's transaction."""
        if send.status != STATUS_READY:
            raise self._refused("launch", send)
        now = now or utcnow()
        account = self.accounts.get_account(send.account_id)
        send.status, send.sent_at = STATUS_RUNNING, now
        self.session.flush()
        rows = audience_rows(
            self.session,
            account_id=send.account_id,
            send_id=send.id,
            recipients=send.recipients or [],
            exclusions=send.exclusions or [],
            topic_id=send.topic_id,
            list_id=send.list_id,
            require_optin=bool(account and account.require_optin),
            now=now,
        )
        created = self.repo.materialise(rows)
        send.skipped = self.repo.suppressed_by_reason(send.id)
        # Every row is queued or suppressed, so the queued count needs no second pass over the audience.
        if created == sum(send.skipped.values()):
            # Nobody to mail: the send is complete at once (the pipeline only finishes sends it works on).
            send.status, send.completed_at = STATUS_COMPLETED, now
        self.session.flush()
        return send

    def abandon_launch(self, send: SingleSend) -> SingleSend:
        """A send that cannot launch (its target is gone) goes back to a cancelled draft to be fixed."""
        send.status, send.scheduled_at, send.sent_at = STATUS_INITIATE, None, None
        send.cancelled, send.skipped = True, {}
        self.session.flush()
        return send

    # -- helpers --------------------------------------------------------------------------------
    def _owner_id(self) -> int | None:
        if self.actor.user_id is not None:
            return self.actor.user_id
        admin = self.accounts.first_admin(self.actor.account_id)
        return admin.id if admin is not None else None

    def _editable(self, send: SingleSend) -> SingleSend:
        send = self.repo.lock(send)
        if send.status not in (STATUS_INITIATE, STATUS_READY):
            raise self._refused("edit", send)
        return send

    def _refused(self, action: str, send: SingleSend) -> NotAllowed:
        status = STATUS_NAMES.get(send.status, str(send.status))
        if send.paused and action == "pause":
            status = "paused"
        return NotAllowed(f"Cannot {action} a single send that is {status}", current_status=status)

    def _stop(self, send: SingleSend) -> None:
        self.repo.cancel_queued(send.id)
        send.cancelled, send.paused = True, False
        send.status, send.completed_at = STATUS_COMPLETED, utcnow()

    def _apply(self, send: SingleSend, fields: dict[str, Any]) -> None:
        """Validate and set content fields (scheduling fields are handled by _apply_schedule)."""
        from herald.delivery.merge import validate_tags

        aid = self.actor.account_id
        if "single_send_name" in fields:
            send.name = _required_text(fields["single_send_name"], "single_send_name")
        for key in ("subject", "preheader", "template_html"):
            if key not in fields:
                continue
            value = fields[key]
            if key == "subject":
                value = _required_text(value, "subject")
            if value:
                validate_tags(value, field=key)
            if key == "preheader":
                send.preheader = value or ""
            elif key == "subject":
                send.subject = value
            else:
                send.template_html = value or None
        if "template_json" in fields:
            send.template_json = fields["template_json"] or None
        if "sender_id" in fields:
            if fields["sender_id"] is None or self.repo.sender(aid, fields["sender_id"]) is None:
                raise Invalid("sender_id", "is not a sender of this account")
            send.sender_id = fields["sender_id"]
        if "template_id" in fields:
            tid = fields["template_id"] if fields["template_id"] is not None else 1
            if self.repo.template(aid, tid) is None:
                raise Invalid("template_id", "is not a template of this account")
            send.template_id = tid
        if "unsubscribe_group_id" in fields:
            gid = fields["unsubscribe_group_id"]
            if gid is not None and self.repo.topic(aid, gid) is None:
                raise Invalid("unsubscribe_group_id", "is not an unsubscribe group of this account")
            send.topic_id = gid
        if "list_id" in fields:
            lid = fields["list_id"]
            if lid is not None and self.repo.mailing_list(aid, lid) is None:
                raise Invalid("list_id", "is not a list of this account")
            send.list_id = lid
        if "recipient_id" in fields:
            if not fields["recipient_id"]:
                raise Invalid("recipient_id", "is required")
            send.recipients = self._targets(fields["recipient_id"], "recipient_id")
        if "exclude_specific_recipient_id" in fields:
            send.exclusions = self._targets(
                fields["exclude_specific_recipient_id"] or [], "exclude_specific_recipient_id"
            )

    def _targets(self, values: Sequence[str], field: str) -> list[dict[str, Any]]:
        from herald.sends.audience import target_conditions

        targets = parse_targets(values, field=field)
        try:
            target_conditions(self.session, self.actor.account_id, targets)
        except NotFound as exc:
            raise Invalid(field, f"{exc.message} in this account") from None
        except Invalid as exc:
            raise Invalid(field, exc.reason) from None
        return targets

    def _apply_schedule(
        self, send: SingleSend, kind: int | None, day: str | None, at: str | None, tz: str | None
    ) -> None:
        now = utcnow()
        send.timezone = (tz or "UTC").strip() or "UTC"
        zone(send.timezone)
        send.cancelled = False
        if kind is None:
            send.status, send.scheduled_at = STATUS_INITIATE, None
            return
        if kind == 0:
            # Send now: ready at once, the launcher picks it up on its next tick.
            send.schedule_type, send.schedule_date, send.schedule_time = 0, None, None
            send.status, send.scheduled_at = STATUS_READY, now
            wake_after_commit(self.session)  # `herald serve`'s worker launches it at once, not at its next poll
            return
        if kind != 1:
            raise Invalid("schedule_type", "must be 0 (now) or 1 (at schedule_date and schedule_time)")
        at_utc = local_to_utc(day, at, send.timezone)
        if at_utc < now - PAST_TOLERANCE:
            raise Invalid("schedule_date", "must not be in the past")
        send.schedule_type = 1
        send.schedule_date = date.fromisoformat(str(day).strip()).isoformat()
        send.schedule_time = time.fromisoformat(str(at).strip()).strftime("%H:%M:%S")
        send.status, send.scheduled_at = STATUS_READY, at_utc


def _required_text(value: Any, field: str) -> str:
    text = str(value).strip() if value is not None else ""
    if not text:
        raise Invalid(field, "is required")
    if any(ch in text for ch in "\r\n") and field == "subject":
        raise Invalid(field, "must be one line")
    return text
