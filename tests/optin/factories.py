"""Factories for opt-in tests: lists, categories, messages and rules written straight through services/rows."""

from __future__ import annotations

from typing import Any

from herald.accounts.service import AccountService
from herald.actor import Actor
from herald.container import Container
from herald.lists.service import ListService
from herald.optin.models import OptinRecord
from herald.templates.models import Message, Sender


def admin(creds: dict[str, Any]) -> Actor:
    """The account's admin user as an actor."""
    return Actor(account_id=creds["account_id"], source="test", user_id=creds["user_id"], is_admin=True)


def user_actor(account_id: int, creds: dict[str, Any], *, is_admin: bool = False) -> Actor:
    """A (non-admin) user as an actor."""
    return Actor(account_id=account_id, source="test", user_id=creds["user_id"], is_admin=is_admin)


def make_category(container: Container, account_id: int, name: str = "Folder") -> int:
    """A category (folder) of the account."""
    with container.transaction() as s:
        return ListService(s, Actor(account_id=account_id, source="test")).create_category(name).id


def make_list(container: Container, account_id: int, name: str = "Summer Competition", **kw: Any) -> int:
    """A list of the account."""
    with container.transaction() as s:
        return ListService(s, Actor(account_id=account_id, source="test")).create_list(name, **kw).id


def make_message(
    container: Container,
    account_id: int,
    name: str = "Summer Competition Confirmation",
    *,
    customoptin: bool = True,
    subject: str = "Confirm your entry, ((first_name))",
    html: str = '<html><body><p>Hi!</p><a href="((optin_confirm_url))">Yes, sign me up</a></body></html>',
    text: str = "Confirm: ((optin_confirm_url))",
    category_id: int | None = None,
    with_sender: bool = True,
) -> int:
    """A message row of the account (written directly: the templates feature owns its service)."""
    with container.transaction() as s:
        sender_id = None
        if with_sender:
            sender = Sender(account_id=account_id, from_email="news@acme.example", from_name="Acme News")
            s.add(sender)
            s.flush()
            sender_id = sender.id
        msg = Message(
            account_id=account_id,
            name=name,
            subject=subject,
            html=html,
            text=text,
            customoptin=customoptin,
            category_id=category_id,
            sender_id=sender_id,
        )
        s.add(msg)
        s.flush()
        return msg.id


def message(container: Container, message_id: int) -> Message:
    """A fresh copy of a message row."""
    with container.transaction() as s:
        row = s.get(Message, message_id)
        assert row is not None
        return row


def delete_message(container: Container, message_id: int) -> None:
    """Soft-delete a message, as the templates feature does."""
    from herald.db.base import utcnow

    with container.transaction() as s:
        row = s.get(Message, message_id)
        assert row is not None
        row.deleted_at = utcnow()


def grant(container: Container, user_id: int, category_id: int) -> None:
    """Grant a user a folder."""
    with container.transaction() as s:
        AccountService(s, container.cipher).grant_category(user_id, category_id)


def restrict_folders(container: Container, account_id: int) -> None:
    """Switch folder restrictions on for an account."""
    from herald.accounts.models import Account

    with container.transaction() as s:
        acc = s.get(Account, account_id)
        assert acc is not None
        acc.folder_restrictions = True


def records(container: Container, subscription_id: int) -> list[OptinRecord]:
    """Every opt-in record of a subscription, oldest first."""
    from sqlalchemy import select

    with container.transaction() as s:
        stmt = select(OptinRecord).where(OptinRecord.subscription_id == subscription_id).order_by(OptinRecord.id)
        return list(s.scalars(stmt))
