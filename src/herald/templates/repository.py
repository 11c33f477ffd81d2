"""SQL for senders, design templates and email messages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from herald.templates.models import Message, Sender, Template


class TemplateRepository:
    """Reads and writes sender, template and message rows, scoped to one account."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: Sender | Template | Message) -> None:
        """Stage a new row and give it its id."""
        self.session.add(obj)
        self.session.flush()

    def sender(self, account_id: int, sender_id: int) -> Sender | None:
        """A sender of the account, or None."""
        if not _plausible_id(sender_id):
            return None
        row = self.session.get(Sender, sender_id)
        return row if row is not None and row.account_id == account_id else None

    def senders_query(self, account_id: int) -> Select[Any]:
        """Select of the account's senders, for paging."""
        return select(Sender).where(Sender.account_id == account_id)

    def template(self, account_id: int, template_id: int) -> Template | None:
        """A built-in template (no account) or one of the account, or None."""
        if not _plausible_id(template_id):
            return None
        row = self.session.get(Template, template_id)
        if row is None or (row.account_id is not None and row.account_id != account_id):
            return None
        return row

    def templates_query(self, account_id: int) -> Select[Any]:
        """Select of the built-in templates plus the account's, for paging."""
        return select(Template).where(or_(Template.account_id.is_(None), Template.account_id == account_id))

    def message(self, account_id: int, message_id: int) -> Message | None:
        """A message of the account (deleted ones included), or None."""
        if not _plausible_id(message_id):
            return None
        row = self.session.get(Message, message_id)
        return row if row is not None and row.account_id == account_id else None

    def lock_message(self, message: Message) -> Message:
        """Re-read a message with a row lock (PostgreSQL), so a lock and an edit cannot interleave."""
        stmt = select(Message).where(Message.id == message.id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one()

    def messages_query(self, account_id: int, *, include_deleted: bool = False) -> Select[Any]:
        """Select of the account's messages, for paging."""
        stmt = select(Message).where(Message.account_id == account_id)
        if not include_deleted:
            stmt = stmt.where(Message.deleted_at.is_(None))
        return stmt


MAX_ID = 2**31 - 1


def _plausible_id(value: int) -> bool:
    """Ids outside the integer column's range name nothing (and would overflow the driver)."""
    return 0 < value <= MAX_ID
