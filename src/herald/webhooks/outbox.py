"""Emitting account events: one durable job per subscribed webhook, queued in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from herald.db.base import utcnow
from herald.jobs.service import enqueue
from herald.webhooks.models import Webhook

EVENTS = (
    "address.status_changed",
    "list.subscribed",
    "list.unsubscribed",
    "topic.unsubscribed",
    "delivery.sent",
    "delivery.bounced",
    "delivery.opened",
    "delivery.clicked",
    "complaint",
)

WEBHOOK_JOB = "webhook.deliver"
# Skycore postbacks are their own job kind so they can keep Skycore's fixed 5-minute retry schedule.
SKYCORE_JOB = "webhook.skycore"


def emit(session: Session, account_id: int, event: str, data: dict[str, Any]) -> int:
    """Queue `event` for every webhook of the account that wants it; returns how many were queued.

    Jobs of one webhook and one subscriber share an ordering key, so they are delivered in order even
    across retries and restarts.
    """
    hooks = session.scalars(select(Webhook).where(Webhook.account_id == account_id).order_by(Webhook.id)).all()
    at = utcnow().isoformat()
    queued = 0
    for hook in hooks:
        if event not in (hook.events or []):
            continue
        subject = str(data.get("email") or data.get("id") or "")
        enqueue(
            session,
            SKYCORE_JOB if hook.format == "skycore" else WEBHOOK_JOB,
            {"webhook_id": hook.id, "event": event, "at": at, "data": data},
            account_id=account_id,
            ordering_key=f"webhook:{hook.id}:{subject}",
            max_attempts=hook_max_attempts(hook),
        )
        queued += 1
    return queued


def hook_max_attempts(hook: Webhook) -> int:
    """Skycore postbacks are retried 5 times after the first try; native webhooks 8 tries with backoff."""
    return 6 if hook.format == "skycore" else 8
