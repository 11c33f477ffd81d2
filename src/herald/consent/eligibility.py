"""The eligibility rule: may this address get this marketing send? Written once, as one SQL expression.

Every send path (single sends, the AllsTechnology dialect, the UI's eligible count) builds its audience
with `eligible(...)`, and `skip_reason(...)` names the first clause an address fails, so skipped
recipients can be counted by reason.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, exists, literal, not_, or_, select

from herald.consent.models import Address, TopicUnsubscribe
from herald.consent.rules import BOUNCED, OPTED_IN, OPTED_OUT, SPAM_REPORTED
from herald.lists.models import Subscription


def _opted_out_now(now: datetime) -> ColumnElement[bool]:
    # Opted out permanently, or temporarily until a date still in the future.
    return and_(
        Address.status == OPTED_OUT,
        or_(Address.opted_out_until.is_(None), Address.opted_out_until > now),
    )


def _topic_unsubscribed(topic_id: int | None) -> ColumnElement[bool]:
    # Left the send's unsubscribe group (topic).
    if topic_id is None:
        return literal(False)
    return exists(
        select(TopicUnsubscribe.address_id).where(
            TopicUnsubscribe.address_id == Address.id, TopicUnsubscribe.topic_id == topic_id
        )
    )


def _not_active_on_list(list_id: int | None) -> ColumnElement[bool]:
    # Targeting a list: only active subscriptions count (unconfirmed on a double opt-in list is left out).
    if list_id is None:
        return literal(False)
    return not_(
        exists(
            select(Subscription.id).where(
                Subscription.address_id == Address.id,
                Subscription.list_id == list_id,
                Subscription.status == "active",
            )
        )
    )


def eligible(
    now: datetime, *, topic_id: int | None = None, list_id: int | None = None, require_optin: bool = False
) -> ColumnElement[bool]:
    """WHERE clause over `Address` (joined by the caller) true for addresses that may get the send."""
    clauses = [
        not_(_opted_out_now(now)),  # consent withdrawn (AllClients opt-out, Mailkit unsubscribe, one-click)
        Address.status != BOUNCED,  # hard bounce: mailing again hurts the sender's reputation
        Address.status != SPAM_REPORTED,  # a complaint is final and never left again
        not_(_topic_unsubscribed(topic_id)),
        not_(_not_active_on_list(list_id)),
    ]
    if require_optin:
        clauses.append(Address.status == OPTED_IN)  # accounts that demand explicit opt-in
    return and_(*clauses)


def skip_reason(
    now: datetime, *, topic_id: int | None = None, list_id: int | None = None, require_optin: bool = False
) -> ColumnElement[str | None]:
    """CASE expression naming why an address is not eligible (NULL when it is), in rule order."""
    whens: list[tuple[ColumnElement[bool], str]] = [
        (Address.status == SPAM_REPORTED, "spam_reported"),
        (Address.status == BOUNCED, "bounced"),
        (_opted_out_now(now), "opted_out"),
        (_topic_unsubscribed(topic_id), "topic_unsubscribed"),
        (_not_active_on_list(list_id), "not_subscribed"),
    ]
    if require_optin:
        whens.append((Address.status != OPTED_IN, "not_opted_in"))
    return case(*whens, else_=None)
