"""SQL for data export, erasure and retention: reads and scrubs every table that holds an address's data.

Privacy work spans the tables of several domains (contacts, lists, sends, opt-in, inbound, jobs); it lives in
one repository so that "everything Herald holds about an address" is written down in exactly one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Text, and_, cast, delete, exists, or_, select, update

from herald.accounts.models import Account
from herald.consent.models import Address, ConsentEvent, Suppression, Topic, TopicUnsubscribe
from herald.consent.repository import ConsentRepository
from herald.contacts.models import Contact
from herald.inbound.models import InboundMessage
from herald.jobs.models import Job
from herald.lists.models import MailingList, Subscription
from herald.optin.models import OptinRecord
from herald.sends.models import Delivery, DeliveryEvent, SingleSend
from herald.sends.repository import SendRepository
from herald.templates.models import Sender

# Deliveries not yet handed to the relay; an erased address's ones are stopped, never sent.
UNSENT = ("queued", "sending")


class PrivacyRepository(ConsentRepository):
    """Reads for the export, scrubbing updates for erasure, and the retention query.

    Address look-ups (`address`, `address_by_id`) come from ConsentRepository.
    """

    # -- reads (export) -------------------------------------------------------------------------
    def contact(self, account_id: int, email: str) -> Contact | None:
        """The contact with this normalised email in the account, or None."""
        stmt = select(Contact).where(Contact.account_id == account_id, Contact.email == email)
        return self.session.scalars(stmt).first()

    def subscriptions(self, address_id: int) -> list[tuple[Subscription, str]]:
        """Every subscription of the address with its list's name (deleted lists included)."""
        stmt = (
            select(Subscription, MailingList.name)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.address_id == address_id)
            .order_by(Subscription.id)
        )
        return [(sub, str(name)) for sub, name in self.session.execute(stmt)]

    def optin_records(self, subscription_ids: Sequence[int]) -> Sequence[OptinRecord]:
        """Opt-in emails queued for these subscriptions."""
        if not subscription_ids:
            return []
        stmt = select(OptinRecord).where(OptinRecord.subscription_id.in_(subscription_ids)).order_by(OptinRecord.id)
        return self.session.scalars(stmt).all()

    def topic_unsubscribes(self, address_id: int) -> list[tuple[TopicUnsubscribe, str]]:
        """The address's topic unsubscribes with each topic's name."""
        stmt = (
            select(TopicUnsubscribe, Topic.name)
            .join(Topic, Topic.id == TopicUnsubscribe.topic_id)
            .where(TopicUnsubscribe.address_id == address_id)
            .order_by(TopicUnsubscribe.topic_id)
        )
        return [(row, str(name)) for row, name in self.session.execute(stmt)]

    def whole_ledger(self, address_id: int) -> Sequence[ConsentEvent]:
        """The address's whole ledger, oldest first."""
        stmt = select(ConsentEvent).where(ConsentEvent.address_id == address_id).order_by(ConsentEvent.id)
        return self.session.scalars(stmt).all()

    def _deliveries_of(self, account_id: int, address_id: int | None, email: str) -> ColumnElement[bool]:
        # A delivery belongs to the address by its link or, for rows written without one, by its email.
        match: ColumnElement[bool] = Delivery.email == email
        if address_id is not None:
            match = or_(Delivery.address_id == address_id, match)
        return and_(Delivery.account_id == account_id, match)

    def deliveries(self, account_id: int, address_id: int | None, email: str) -> list[tuple[Delivery, SingleSend]]:
        """The address's deliveries with their sends, oldest first."""
        stmt = (
            select(Delivery, SingleSend)
            .join(SingleSend, SingleSend.id == Delivery.send_id)
            .where(self._deliveries_of(account_id, address_id, email))
            .order_by(Delivery.id)
        )
        return [(d, s) for d, s in self.session.execute(stmt)]

    def delivery_ids(self, account_id: int, address_id: int | None, email: str) -> list[int]:
        """Ids of the address's deliveries."""
        stmt = select(Delivery.id).where(self._deliveries_of(account_id, address_id, email))
        return [int(i) for i in self.session.scalars(stmt)]

    def delivery_events(self, delivery_ids: Sequence[int]) -> Sequence[DeliveryEvent]:
        """Opens, clicks, bounces, complaints and unsubscribes of these deliveries."""
        if not delivery_ids:
            return []
        stmt = select(DeliveryEvent).where(DeliveryEvent.delivery_id.in_(delivery_ids)).order_by(DeliveryEvent.id)
        return self.session.scalars(stmt).all()

    def inbound_messages(self, delivery_ids: Sequence[int]) -> Sequence[InboundMessage]:
        """Bounces and complaints matched to these deliveries."""
        if not delivery_ids:
            return []
        stmt = select(InboundMessage).where(InboundMessage.delivery_id.in_(delivery_ids)).order_by(InboundMessage.id)
        return self.session.scalars(stmt).all()

    # -- erasure --------------------------------------------------------------------------------
    def delete_contact(self, account_id: int, email: str) -> int:
        """Remove the contact row (its custom fields with it); deliveries keep no link to it."""
        ids = select(Contact.id).where(Contact.account_id == account_id, Contact.email == email)
        self.session.execute(update(Delivery).where(Delivery.contact_id.in_(ids)).values(contact_id=None))
        result = self.session.execute(delete(Contact).where(Contact.account_id == account_id, Contact.email == email))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def scrub_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Blank deliveries' personal fields; unsent ones are stopped so the erased address is never mailed."""
        if not delivery_ids:
            return
        self.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids), Delivery.status.in_(UNSENT))
            .values(status="suppressed", lease_owner=None, lease_until=None, next_attempt_at=None)
        )
        self.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids))
            .values(email=None, error=None, contact_id=None, address_id=None)
        )
        # Event detail can carry a bounce diagnostic or a URL with the address in it: blank it too.
        self.session.execute(
            update(DeliveryEvent)
            .where(DeliveryEvent.delivery_id.in_(delivery_ids))
            .values(ip=None, user_agent=None, detail=None)
        )

    def scrub_inbound(self, account_id: int, delivery_ids: Sequence[int], email: str) -> None:
        """Drop the raw text of bounces and complaints matched to the deliveries or naming the address.

        Unmatched messages (no account) that name the address are blanked too: they belong to nobody else.
        """
        mentions = InboundMessage.raw.contains(email, autoescape=True)
        owner = or_(InboundMessage.account_id == account_id, InboundMessage.account_id.is_(None))
        where: ColumnElement[bool] = and_(owner, mentions)
        if delivery_ids:
            where = or_(where, InboundMessage.delivery_id.in_(delivery_ids))
        self.session.execute(update(InboundMessage).where(where).values(raw=None))

    def scrub_ledger(self, address_id: int) -> int:
        """Blank the ledger's personal fields, keeping what changed, when and through which source."""
        result = self.session.execute(
            update(ConsentEvent)
            .where(ConsentEvent.address_id == address_id)
            .values(ip=None, user_agent=None, reason=None, address_id=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def delete_memberships(self, address_id: int) -> None:
        """Delete the address's opt-in records, subscriptions and topic unsubscribes."""
        subs = select(Subscription.id).where(Subscription.address_id == address_id)
        self.session.execute(delete(OptinRecord).where(OptinRecord.subscription_id.in_(subs)))
        self.session.execute(delete(Subscription).where(Subscription.address_id == address_id))
        self.session.execute(delete(TopicUnsubscribe).where(TopicUnsubscribe.address_id == address_id))

    def delete_jobs_mentioning(self, account_id: int, email: str) -> int:
        """Delete the account's queued or finished jobs (webhook bodies, postbacks) that carry the address."""
        needles = {email, json.dumps(email)[1:-1]}
        text = cast(Job.payload, Text)
        clauses = []
        for needle in needles:
            clauses += [
                text.contains(needle, autoescape=True),
                Job.ordering_key.contains(needle, autoescape=True),
                Job.last_error.contains(needle, autoescape=True),
            ]
        result = self.session.execute(delete(Job).where(Job.account_id == account_id, or_(*clauses)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def keep_suppression(self, account_id: int, email_hash: str, status: str) -> None:
        """Store (or update) the keyed-hash suppression of an erased address."""
        stmt = select(Suppression).where(Suppression.account_id == account_id, Suppression.email_hash == email_hash)
        row = self.session.scalars(stmt).first()
        if row is None:
            self.session.add(Suppression(account_id=account_id, email_hash=email_hash, status=status))
        else:
            row.status = status
        self.session.flush()

    def suppression(self, account_id: int, email_hash: str) -> Suppression | None:
        """The suppression with this keyed hash, or None."""
        stmt = select(Suppression).where(Suppression.account_id == account_id, Suppression.email_hash == email_hash)
        return self.session.scalars(stmt).first()

    def delete_address(self, address_id: int) -> None:
        """Delete the address row itself (ledger rows were unlinked first)."""
        self.session.execute(delete(Address).where(Address.id == address_id))
        self.session.expire_all()

    # -- retention ------------------------------------------------------------------------------
    def stale_unconfirmed(self, cutoff: datetime, *, limit: int) -> Sequence[Subscription]:
        """Unconfirmed subscriptions created before `cutoff`, oldest first (every account)."""
        stmt = (
            select(Subscription)
            .where(Subscription.status == "unconfirmed", Subscription.created_at < cutoff)
            .order_by(Subscription.id)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def delete_subscription(self, subscription_id: int) -> None:
        """Delete one subscription with its opt-in records."""
        self.session.execute(delete(OptinRecord).where(OptinRecord.subscription_id == subscription_id))
        self.session.execute(delete(Subscription).where(Subscription.id == subscription_id))

    def holds_anything_else(self, address: Address) -> bool:
        """Does the address still have a subscription or a contact (reasons to keep it)?"""
        has_sub = exists(select(Subscription.id).where(Subscription.address_id == address.id))
        has_contact = exists(
            select(Contact.id).where(Contact.account_id == address.account_id, Contact.email == address.email)
        )
        return bool(self.session.scalar(select(or_(has_sub, has_contact))))

    # -- confirmation links of the preferences page ---------------------------------------------
    def delivery_by_token(self, token: str) -> Delivery | None:
        """The delivery whose random token a public link carries, or None."""
        return SendRepository(self.session).delivery_by_token(token)

    def recent_job(self, ordering_key: str, since: datetime) -> Job | None:
        """A job with this key created after `since` (throttles confirmation emails), or None."""
        stmt = select(Job).where(Job.ordering_key == ordering_key, Job.created_at > since).limit(1)
        return self.session.scalars(stmt).first()

    def locked_job(self, job_id: int) -> Job | None:
        """A job re-read with a row lock (PostgreSQL), so a single-use link is redeemed once."""
        stmt = select(Job).where(Job.id == job_id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).first()

    def delete_privacy_jobs(self, account_id: int, address_id: int) -> None:
        """Drop the address's confirmation jobs, so their links die with it (SQLite may reuse its id)."""
        keys = [privacy_job_key(address_id, action) for action in PRIVACY_ACTIONS]
        self.session.execute(delete(Job).where(Job.account_id == account_id, Job.ordering_key.in_(keys)))

    def first_sender(self, account_id: int) -> Sender | None:
        """The account's oldest sender identity, used as From of confirmation emails."""
        stmt = select(Sender).where(Sender.account_id == account_id).order_by(Sender.id).limit(1)
        return self.session.scalars(stmt).first()

    def account_name(self, account_id: int) -> str:
        """The account's name, shown on pages and in emails."""
        return str(self.session.scalar(select(Account.name).where(Account.id == account_id)) or "")


PRIVACY_ACTIONS = ("export", "erase")


def privacy_job_key(address_id: int, action: str) -> str:
    """The ordering key of an address's confirmation-email job (no personal data in it)."""
    return f"privacy:{address_id}:{action}"
