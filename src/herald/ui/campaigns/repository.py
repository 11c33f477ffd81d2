"""Read queries the campaign pages need beyond what the domain services offer (SQL lives only here)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from herald.contacts.models import Contact
from herald.lists.models import MailingList
from herald.optin.models import OptinRecord, OptinRule
from herald.sends.models import Delivery, SingleSend


class CampaignPagesRepository:
    """Small listings for the admin pages of one account."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def lists(self, account_id: int) -> Sequence[MailingList]:
        """The account's live lists, by name."""
        stmt = select(MailingList).where(MailingList.account_id == account_id, MailingList.deleted_at.is_(None))
        return self.session.scalars(stmt.order_by(MailingList.name, MailingList.id)).all()

    def deliveries_page(
        self, account_id: int, send_id: int, *, status: str | None, offset: int, limit: int
    ) -> tuple[Sequence[Delivery], int]:
        """One page of a send's recipients (by id) and how many there are in all."""
        where = [Delivery.account_id == account_id, Delivery.send_id == send_id]
        if status:
            where.append(Delivery.status == status)
        total = int(self.session.execute(select(func.count()).select_from(Delivery).where(*where)).scalar_one())
        rows = self.session.scalars(select(Delivery).where(*where).order_by(Delivery.id).offset(offset).limit(limit))
        return rows.all(), total

    def sample_contact(self, account_id: int, condition: ColumnElement[bool] | None = None) -> Contact | None:
        """A contact to render a preview with: the first matching `condition`, else the account's first."""
        stmt = select(Contact).where(Contact.account_id == account_id)
        if condition is not None:
            stmt = stmt.where(condition)
        return self.session.scalars(stmt.order_by(Contact.id).limit(1)).first()

    def rules_using_messages(self, account_id: int) -> dict[int, list[OptinRule]]:
        """Opt-in rules by the message they send (why a message is locked)."""
        out: dict[int, list[OptinRule]] = {}
        stmt = select(OptinRule).where(OptinRule.account_id == account_id).order_by(OptinRule.id)
        for rule in self.session.scalars(stmt):
            out.setdefault(rule.message_id, []).append(rule)
        return out

    def send_ids(self, account_id: int) -> set[int]:
        """Every send of the account, deleted ones included (their mails are still the account's)."""
        stmt = select(SingleSend.id).where(SingleSend.account_id == account_id)
        return {int(i) for i in self.session.scalars(stmt)}

    def optin_message_refs(self, account_id: int) -> set[str]:
        """Message-IDs of the opt-in emails the account sent."""
        stmt = select(OptinRecord.message_ref).where(
            OptinRecord.account_id == account_id, OptinRecord.message_ref.is_not(None)
        )
        return {str(ref) for ref in self.session.scalars(stmt)}
