"""Categories, lists and subscriptions: who is on which list, with every change in the consent ledger.

Rules (CONTRACT.md):
- A subscription posted `active` is active at once and never changes the address's global status.
- An address that is opted out (permanently, or until a future date), bounced or spam-reported cannot be
  subscribed: NotAllowed carries its status and nothing changes (not even a new address row).
- An active subscription asked to become `unconfirmed` stays active (a repeated sign-up never demotes it).
- Unsubscribing needs an address the account knows (NotFound "address") with a subscription on the list
  (NotFound "subscription"); unsubscribing an already unsubscribed one is a no-op without a ledger entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent import rules
from herald.consent.addresses import normalise_email
from herald.consent.models import Address
from herald.consent.service import ConsentService, email_hash
from herald.db.base import utcnow
from herald.errors import Invalid, NotAllowed, NotFound
from herald.lists.models import Category, MailingList, Subscription
from herald.lists.repository import ListRepository
from herald.optin import trigger
from herald.webhooks.outbox import emit

ACTIVE, UNCONFIRMED, UNSUBSCRIBED = "active", "unconfirmed", "unsubscribed"
SUBSCRIBABLE = (ACTIVE, UNCONFIRMED)


class ListService:
    """Categories, lists and subscriptions of the actor's account."""

    def __init__(self, session: Session, actor: Actor, *, hash_key: bytes | None = None) -> None:
        self.session = session
        self.actor = actor
        self.repo = ListRepository(session)
        self.consent = ConsentService(session, actor, hash_key=hash_key)
        self._hash_key = hash_key

    # -- categories -----------------------------------------------------------------------------
    def create_category(self, name: str) -> Category:
        """A new folder of lists."""
        category = Category(account_id=self.actor.account_id, name=_name(name))
        self.repo.add(category)
        return category

    def get_category(self, category_id: int) -> Category:
        """A live category of the account, or NotFound."""
        category = self.repo.category(self.actor.account_id, category_id)
        if category is None:
            raise NotFound("category", category_id)
        return category

    def categories_query(self) -> Select[Any]:
        """The account's categories, for paging."""
        return self.repo.categories_query(self.actor.account_id)

    # -- lists ----------------------------------------------------------------------------------
    def create_list(self, name: str, *, category_id: int | None = None, double_opt_in: bool = False) -> MailingList:
        """A new list, optionally in a category of the account (another account's category is NotFound)."""
        if category_id is not None:
            try:
                self.get_category(category_id)
            except NotFound:
                raise Invalid("category_id", f"category {category_id} not found") from None
        mailing_list = MailingList(
            account_id=self.actor.account_id, name=_name(name), category_id=category_id, double_opt_in=double_opt_in
        )
        self.repo.add(mailing_list)
        return mailing_list

    def get_list(self, list_id: int) -> MailingList:
        """A live list of the account; NotFound for unknown, other-account and deleted lists."""
        mailing_list = self.repo.mailing_list(self.actor.account_id, list_id)
        if mailing_list is None:
            raise NotFound("list", list_id)
        return mailing_list

    def lists_query(self, *, category_id: int | None = None) -> Select[Any]:
        """The account's live lists, for paging."""
        return self.repo.lists_query(self.actor.account_id, category_id=category_id)

    # -- subscriptions --------------------------------------------------------------------------
    def get_subscription(self, subscription_id: int) -> Subscription:
        """A subscription of the account, or NotFound."""
        sub = self.repo.subscription_by_id(self.actor.account_id, subscription_id)
        if sub is None:
            raise NotFound("subscription", subscription_id)
        return sub

    def find_subscription(self, list_id: int, email: str) -> Subscription | None:
        """The subscription of an email to a list, or None."""
        self.get_list(list_id)
        addr = self.consent.find(email)
        return None if addr is None else self.repo.subscription(list_id, addr.id)

    def subscriptions(
        self, list_id: int, *, status: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[tuple[Subscription, str]]:
        """A page of a list's subscriptions (with emails), by id; NotFound for a list not the account's."""
        self.get_list(list_id)
        if status is not None and status not in (ACTIVE, UNCONFIRMED, UNSUBSCRIBED):
            raise Invalid("status", "must be unconfirmed, active or unsubscribed")
        return self.repo.subscriptions_with_email(list_id, status=status, after_id=after_id, limit=limit)

    def subscribe(
        self,
        list_id: int,
        email: str,
        *,
        status: str = ACTIVE,
        create_address: bool = True,
        reason: str | None = None,
        send_optin: bool = True,
    ) -> Subscription:
        """Put an address on a list as `active` or `unconfirmed`, refusing suppressed addresses.

        A new or re-subscribed `unconfirmed` subscription triggers the opt-in email hook (unless
        `send_optin` is false: Sign-Up.to sends opt-in emails only through emailOptIn); becoming
        `active` emits `list.subscribed`. Repeating the current status changes nothing.
        """
        if status not in SUBSCRIBABLE:
            raise Invalid("status", "must be unconfirmed or active")
        mailing_list = self.get_list(list_id)
        normalised = normalise_email(email)
        addr = self.consent.find(normalised)
        if addr is None:
            if not create_address:
                raise NotFound("address", normalised)
            self._refuse_if_erased_suppressed(normalised)
            addr = self.consent.ensure(normalised)
        # Locked (PostgreSQL) so a concurrent opt-out cannot slip between the check and the subscription,
        # and two sign-ups of one address serialise instead of racing on the unique subscription.
        addr = self.consent.repo.lock_address(addr)
        current = self.consent.effective_status(addr)
        if current in rules.SUPPRESSING:
            raise NotAllowed(f"Not allowed for current status {current}", current_status=current)

        sub = self.repo.subscription(mailing_list.id, addr.id)
        if sub is None:
            sub = Subscription(
                account_id=self.actor.account_id, list_id=mailing_list.id, address_id=addr.id, status=status
            )
            self.repo.add(sub)
            previous: str | None = None
        else:
            sub = self.repo.lock_subscription(sub)
            previous = sub.status
            if previous == status or (previous == ACTIVE and status == UNCONFIRMED):
                return sub
            sub.status = status
            sub.updated_at = utcnow()
            self.session.flush()
        self.consent.record_subscription(addr, mailing_list.id, previous, status, reason=reason)
        if status == ACTIVE:
            self._emit("list.subscribed", addr, mailing_list, ACTIVE)
        elif send_optin:
            trigger.on_unconfirmed(self.session, self.actor, sub)
        return sub

    def confirm(self, subscription: Subscription, *, reason: str | None = None) -> Subscription:
        """Make an unconfirmed subscription active (double opt-in confirmation); others are left as they are."""
        addr = self.consent.get_by_id(subscription.address_id)
        return self.subscribe(subscription.list_id, addr.email, status=ACTIVE, create_address=False, reason=reason)

    def unsubscribe(self, list_id: int, email: str, *, reason: str | None = None) -> Subscription:
        """Take an address off a list; ledger entry and `list.unsubscribed` event (see the module rules)."""
        mailing_list = self.get_list(list_id)
        addr = self.consent.get(email)
        sub = self.repo.subscription(mailing_list.id, addr.id)
        if sub is None:
            raise NotFound("subscription", f"of {addr.email} to list {mailing_list.id}")
        sub = self.repo.lock_subscription(sub)
        if sub.status == UNSUBSCRIBED:
            return sub
        previous = sub.status
        sub.status = UNSUBSCRIBED
        sub.updated_at = utcnow()
        self.session.flush()
        self.consent.record_subscription(addr, mailing_list.id, previous, UNSUBSCRIBED, reason=reason)
        self._emit("list.unsubscribed", addr, mailing_list, UNSUBSCRIBED)
        return sub

    def unsubscribe_all(self, list_id: int, *, reason: str | None = None) -> int:
        """Unsubscribe every subscriber of a list at once (Skycore EMAIL=ALL); returns how many changed.

        The status change is set-based; the ledger and the events stay one per address, because each
        address's proof of consent must show the change.
        """
        mailing_list = self.get_list(list_id)
        rows: Sequence[tuple[Subscription, Address]] = self.repo.subscribed_rows(mailing_list.id)
        for sub, addr in rows:
            self.consent.record_subscription(addr, mailing_list.id, sub.status, UNSUBSCRIBED, reason=reason)
            self._emit("list.unsubscribed", addr, mailing_list, UNSUBSCRIBED)
        self.repo.unsubscribe_ids([sub.id for sub, _ in rows], utcnow())
        return len(rows)

    # -- helpers --------------------------------------------------------------------------------
    def _refuse_if_erased_suppressed(self, email: str) -> None:
        # An erased address that was suppressed would come back suppressed: refuse before creating it,
        # so a refused subscribe leaves no row behind even when the edge commits.
        if self._hash_key is None:
            return
        suppression = self.consent.repo.suppression(self.actor.account_id, email_hash(self._hash_key, email))
        if suppression is not None and suppression.status in rules.SUPPRESSING:
            raise NotAllowed(f"Not allowed for current status {suppression.status}", current_status=suppression.status)

    def _emit(self, event: str, addr: Address, mailing_list: MailingList, status: str) -> None:
        emit(
            self.session,
            self.actor.account_id,
            event,
            {"email": addr.email, "list_id": mailing_list.id, "list": mailing_list.name, "status": status},
        )


def _name(name: str) -> str:
    value = (name or "").strip()
    if not value:
        raise Invalid("name", "must not be empty")
    if len(value) > 200:
        raise Invalid("name", "must be at most 200 characters")
    return value
