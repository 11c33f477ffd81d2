"""The hook lists call when a subscription becomes unconfirmed (filled in by the double opt-in feature)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.lists.models import Subscription


def on_unconfirmed(session: Session, actor: Actor, subscription: Subscription) -> None:
    """Queue the opt-in email for an unconfirmed subscription (the opt-in feature replaces this body)."""
    return None
