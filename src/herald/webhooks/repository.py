"""SQL for webhooks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from herald.webhooks.models import Webhook

MAX_ID = 2**31 - 1


class WebhookRepository:
    """Reads and writes webhook rows, scoped to one account."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, hook: Webhook) -> None:
        """Stage a new row and give it its id."""
        self.session.add(hook)
        self.session.flush()

    def webhook(self, account_id: int, webhook_id: int) -> Webhook | None:
        """A webhook of the account, or None."""
        if not 0 < webhook_id <= MAX_ID:
            return None
        row = self.session.get(Webhook, webhook_id)
        return row if row is not None and row.account_id == account_id else None

    def webhooks_query(self, account_id: int) -> Select[Any]:
        """Select of the account's webhooks, for paging."""
        return select(Webhook).where(Webhook.account_id == account_id)

    def delete(self, hook: Webhook) -> None:
        """Remove a webhook (jobs already queued for it find it gone and stop)."""
        self.session.delete(hook)
        self.session.flush()
