"""SQL for single sends, their deliveries, and the catalogue rows a send refers to (senders, templates, topics)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from herald.consent.models import Address, Topic
from herald.consent.rules import OPTED_OUT
from herald.contacts.models import Contact, ContactType, Segment
from herald.db.engine import is_postgres
from herald.lists.models import MailingList
from herald.sends.models import NOT_ID_TOKEN, STATUS_READY, Delivery, SingleSend
from herald.templates.models import Sender, Template

# Settings of the launch transaction on PostgreSQL (SET LOCAL: they end with it), measured on a 1 M launch:
# the plan's cost makes PostgreSQL JIT-compile it with inlining and optimisation (≈ 0.4 s, nothing gained
# for a plan run once), and the audience's hash join spills to 16 temporary batches at the default 4 MB.
_LAUNCH_SETTINGS = ("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'")

_TOKEN_LENGTH = 32
_MAX_ID = 2**31 - 1  # deliveries.id is a 4-byte integer


def token_id(token: str) -> int | None:
    """The delivery id a token begins with (8 hex digits, as the PostgreSQL launch makes them), or None."""
    head = token[:8]
    if len(head) != 8 or any(ch not in "0123456789abcdef" for ch in head):
        return None
    value = int(head, 16)
    return value if value <= _MAX_ID else None


class SendRepository:
    """Reads and writes sends and deliveries; every read is scoped to one account."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- sends ----------------------------------------------------------------------------------
    def add(self, send: SingleSend) -> SingleSend:
        """Stage a new send and give it its id."""
        self.session.add(send)
        self.session.flush()
        return send

    def get(self, account_id: int, send_id: int) -> SingleSend | None:
        """A live (not deleted) send of the account, or None."""
        send = self.session.get(SingleSend, send_id)
        if send is None or send.account_id != account_id or send.deleted_at is not None:
            return None
        return send

    def by_utr(self, account_id: int, utr: str) -> SingleSend | None:
        """A live send of the account by its utr, or None."""
        stmt = select(SingleSend).where(
            SingleSend.account_id == account_id, SingleSend.utr == utr, SingleSend.deleted_at.is_(None)
        )
        return self.session.scalars(stmt).first()

    def live_sends(self, account_id: int) -> Select[SingleSend]:
        """The account's live sends (for a paged or full listing, ordered by the caller)."""
        return select(SingleSend).where(SingleSend.account_id == account_id, SingleSend.deleted_at.is_(None))

    def all_sends(self, account_id: int) -> Sequence[SingleSend]:
        """Every live send of the account, oldest first."""
        return self.session.scalars(self.live_sends(account_id).order_by(SingleSend.id)).all()

    def many(self, account_id: int, ids: Sequence[int]) -> Sequence[SingleSend]:
        """The live sends of the account among these ids."""
        if not ids:
            return []
        return self.session.scalars(self.live_sends(account_id).where(SingleSend.id.in_(ids))).all()

    def lock(self, send: SingleSend) -> SingleSend:
        """Re-read a send with a row lock (PostgreSQL), so a state change cannot race the launcher."""
        stmt = select(SingleSend).where(SingleSend.id == send.id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one()

    def claim_due(self, now: datetime) -> SingleSend | None:
        """One ready send whose time has come, locked so that no other worker launches it too."""
        stmt = (
            select(SingleSend)
            .where(
                SingleSend.status == STATUS_READY,
                SingleSend.paused.is_(False),
                SingleSend.cancelled.is_(False),
                SingleSend.deleted_at.is_(None),
                SingleSend.scheduled_at <= now,
            )
            .order_by(SingleSend.scheduled_at, SingleSend.id)
            .limit(1)
        )
        if is_postgres(self.session):
            stmt = stmt.with_for_update(skip_locked=True)
        return self.session.scalars(stmt).first()

    # -- deliveries -----------------------------------------------------------------------------
    def materialise(self, rows: Select[Any]) -> int:
        """Create one delivery per selected row (columns named by its labels) in one statement; how many."""
        if is_postgres(self.session):
            for setting in _LAUNCH_SETTINGS:
                self.session.execute(text(setting))
        stmt = insert(Delivery).from_select(list(rows.selected_columns.keys()), rows)
        # SQLAlchemy keeps an INSERT's rowcount only when asked to.
        result = self.session.execute(stmt.execution_options(preserve_rowcount=True))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def delivery_by_token(self, token: str) -> Delivery | None:
        """The delivery whose token this is (the whole token must match), or None.

        On PostgreSQL the unique token index holds only tokens that do not begin with their row's id (see
        models.NOT_ID_TOKEN), so the rest are found by the primary key, through the id the token begins with:
        one BitmapOr of the two indexes. The stored token is still compared in full, so knowing an id gives
        nothing without the keyed suffix.
        """
        if not token or len(token) > _TOKEN_LENGTH:
            return None
        stmt = select(Delivery).where(Delivery.token == token)
        if is_postgres(self.session):
            ident, other = token_id(token), text(NOT_ID_TOKEN)
            stmt = stmt.where(other if ident is None else or_(Delivery.id == ident, other))
        return self.session.scalars(stmt.limit(1)).first()

    def count_by_status(self, send_id: int) -> dict[str, int]:
        """How many deliveries of the send are in each status."""
        return self.counts_by_status([send_id]).get(send_id, {})

    def counts_by_status(self, send_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """For each of the sends that has deliveries, how many are in each status.

        Answered from ix_deliveries_claim (send_id, status, …) without reading the rows (covering on SQLite):
        a running send's page is polled for progress.
        """
        d = Delivery
        stmt = select(d.send_id, d.status, func.count()).where(d.send_id.in_(send_ids)).group_by(d.send_id, d.status)
        counts: dict[int, dict[str, int]] = {}
        for send_id, status, n in self.session.execute(stmt):
            counts.setdefault(send_id, {})[status] = int(n)
        return counts

    def accepted_then_bounced(self, send_ids: Sequence[int]) -> dict[int, int]:
        """Per send, deliveries the relay accepted that a later report marked bounced (few: read apart)."""
        d = Delivery
        stmt = (
            select(d.send_id, func.count())
            .where(d.send_id.in_(send_ids), d.status == "bounced", d.sent_at.is_not(None))
            .group_by(d.send_id)
        )
        return {send_id: int(n) for send_id, n in self.session.execute(stmt)}

    def suppressed_by_reason(self, send_id: int) -> dict[str, int]:
        """Counts of the recipients left out at launch, by the eligibility clause they failed."""
        stmt = (
            select(Delivery.error, func.count())
            .where(Delivery.send_id == send_id, Delivery.status == "suppressed")
            .group_by(Delivery.error)
        )
        return {str(reason): int(n) for reason, n in self.session.execute(stmt)}

    def cancel_queued(self, send_id: int) -> int:
        """Withdraw the deliveries not sent yet (a cancelled send never mails them)."""
        stmt = (
            update(Delivery)
            .where(Delivery.send_id == send_id, Delivery.status == "queued")
            .values(status="cancelled", error="send cancelled")
        )
        return int(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def deliveries(self, send_id: int, *, status: str | None = None) -> Select[Delivery]:
        """The send's deliveries (paged by the caller), optionally of one status."""
        stmt = select(Delivery).where(Delivery.send_id == send_id)
        if status is not None:
            stmt = stmt.where(Delivery.status == status)
        return stmt

    # -- what a send refers to ------------------------------------------------------------------
    def sender(self, account_id: int, sender_id: int) -> Sender | None:
        """A sender of the account, or None."""
        sender = self.session.get(Sender, sender_id)
        return sender if sender is not None and sender.account_id == account_id else None

    def senders_by_id(self, ids: set[int]) -> dict[int, Sender]:
        """Senders by id, for rendering a page of sends."""
        if not ids:
            return {}
        return {s.id: s for s in self.session.scalars(select(Sender).where(Sender.id.in_(ids)))}

    def template(self, account_id: int, template_id: int) -> Template | None:
        """A built-in template or one of the account's, or None."""
        tpl = self.session.get(Template, template_id)
        if tpl is None or tpl.account_id not in (None, account_id):
            return None
        return tpl

    def topic(self, account_id: int, topic_id: int) -> Topic | None:
        """An unsubscribe group (topic) of the account, or None."""
        topic = self.session.get(Topic, topic_id)
        return topic if topic is not None and topic.account_id == account_id else None

    def mailing_list(self, account_id: int, list_id: int) -> MailingList | None:
        """A live list of the account, or None."""
        lst = self.session.get(MailingList, list_id)
        if lst is None or lst.account_id != account_id or lst.deleted_at is not None:
            return None
        return lst

    # -- catalogue listings for clients that need ids (every row of the account) ---------------
    def templates(self, account_id: int) -> Sequence[Template]:
        """Built-in templates and the account's own, by id."""
        stmt = select(Template).where(or_(Template.account_id.is_(None), Template.account_id == account_id))
        return self.session.scalars(stmt.order_by(Template.id)).all()

    def senders(self, account_id: int) -> Sequence[Sender]:
        """The account's senders, by id."""
        return self.session.scalars(select(Sender).where(Sender.account_id == account_id).order_by(Sender.id)).all()

    def topics(self, account_id: int) -> Sequence[Topic]:
        """The account's unsubscribe groups (topics), by id."""
        return self.session.scalars(select(Topic).where(Topic.account_id == account_id).order_by(Topic.id)).all()

    def contact_types(self, account_id: int) -> Sequence[ContactType]:
        """The account's contact types, by id."""
        stmt = select(ContactType).where(ContactType.account_id == account_id).order_by(ContactType.id)
        return self.session.scalars(stmt).all()

    def segments(self, account_id: int) -> Sequence[Segment]:
        """The account's segments, by id."""
        return self.session.scalars(select(Segment).where(Segment.account_id == account_id).order_by(Segment.id)).all()

    def contacts(self, account_id: int) -> Sequence[Contact]:
        """The account's contacts, by id."""
        return self.session.scalars(select(Contact).where(Contact.account_id == account_id).order_by(Contact.id)).all()

    def opted_out_addresses(self, account_id: int) -> Sequence[Address]:
        """Addresses globally unsubscribed (opted out), by id."""
        stmt = select(Address).where(Address.account_id == account_id, Address.status == OPTED_OUT)
        return self.session.scalars(stmt.order_by(Address.id)).all()
