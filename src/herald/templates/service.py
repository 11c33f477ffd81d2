"""Senders, design templates and email messages of an account.

Built-in templates (ids 1-3, no account) are visible to every account and editable by none. A message used
by an opt-in rule is `locked`: it can no longer be edited, but it can still be (soft) deleted, and a rule
that uses a deleted message keeps sending it (Sign-Up.to optinAutomation).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent.addresses import normalise_email
from herald.db.base import utcnow
from herald.errors import Invalid, NotAllowed, NotFound
from herald.templates.models import Message, Sender, Template
from herald.templates.repository import TemplateRepository

MAX_NAME = 200
MAX_SUBJECT = 500
MAX_ADDRESS = 500


class SenderService:
    """The account's From identities."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self.repo = TemplateRepository(session)

    def create(
        self, from_email: str, *, from_name: str | None = None, reply_to: str | None = None, address: str | None = None
    ) -> Sender:
        """A new sender; emails normalised, each field checked by name."""
        sender = Sender(
            account_id=self.actor.account_id,
            from_email=normalise_email(from_email, field="from_email"),
            from_name=_optional(from_name, "from_name", MAX_NAME),
            reply_to=normalise_email(reply_to, field="reply_to") if reply_to and reply_to.strip() else None,
            address=_optional(address, "address", MAX_ADDRESS),
        )
        self.repo.add(sender)
        return sender

    def get_sender(self, sender_id: int) -> Sender:
        """A sender of the account, or NotFound."""
        sender = self.repo.sender(self.actor.account_id, sender_id)
        if sender is None:
            raise NotFound("sender", sender_id)
        return sender

    def senders_query(self) -> Select[Any]:
        """The account's senders, for paging."""
        return self.repo.senders_query(self.actor.account_id)


class TemplateService:
    """Design templates: the built-in ones plus the account's own."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self.repo = TemplateRepository(session)

    def create(self, name: str, *, html: str = "", json: str = "{}") -> Template:
        """A new design template of the account."""
        template = Template(
            account_id=self.actor.account_id, name=_required(name, "name", MAX_NAME), html=html or "", json=json or "{}"
        )
        self.repo.add(template)
        return template

    def get_template(self, template_id: int) -> Template:
        """A built-in template or one of the account, or NotFound."""
        template = self.repo.template(self.actor.account_id, template_id)
        if template is None:
            raise NotFound("template", template_id)
        return template

    def templates_query(self) -> Select[Any]:
        """The built-in templates plus the account's, for paging."""
        return self.repo.templates_query(self.actor.account_id)


class MessageService:
    """Email messages: created, edited until locked by an opt-in rule, soft-deleted."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self.repo = TemplateRepository(session)

    def create(
        self,
        name: str,
        subject: str,
        *,
        html: str = "",
        text: str = "",
        customoptin: bool = False,
        sender_id: int | None = None,
        category_id: int | None = None,
    ) -> Message:
        """A new message owned by the actor's user."""
        message = Message(
            account_id=self.actor.account_id,
            user_id=self.actor.user_id,
            name=_required(name, "name", MAX_NAME),
            subject=_subject(subject),
            html=html or "",
            text=text or "",
            customoptin=customoptin,
            sender_id=self._sender_id(sender_id),
            category_id=self._category_id(category_id),
        )
        self.repo.add(message)
        return message

    def get_message(self, message_id: int, *, include_deleted: bool = False) -> Message:
        """A message of the account (a deleted one only when asked), or NotFound."""
        message = self.repo.message(self.actor.account_id, message_id)
        if message is None or (message.deleted_at is not None and not include_deleted):
            raise NotFound("message", message_id)
        return message

    def messages_query(self, *, include_deleted: bool = False) -> Select[Any]:
        """The account's messages, for paging."""
        return self.repo.messages_query(self.actor.account_id, include_deleted=include_deleted)

    def update(
        self,
        message_id: int,
        *,
        name: str | None = None,
        subject: str | None = None,
        html: str | None = None,
        text: str | None = None,
        customoptin: bool | None = None,
        sender_id: int | None = None,
        category_id: int | None = None,
    ) -> Message:
        """Change the given fields (None leaves a field as it is); NotAllowed("locked") once a rule uses it."""
        message = self.repo.lock_message(self.get_message(message_id))
        if message.locked:
            raise NotAllowed("Message is used by an opt-in rule and cannot be edited", current_status="locked")
        if name is not None:
            message.name = _required(name, "name", MAX_NAME)
        if subject is not None:
            message.subject = _subject(subject)
        if html is not None:
            message.html = html
        if text is not None:
            message.text = text
        if customoptin is not None:
            message.customoptin = customoptin
        if sender_id is not None:
            message.sender_id = self._sender_id(sender_id)
        if category_id is not None:
            message.category_id = self._category_id(category_id)
        message.updated_at = utcnow()
        self.session.flush()
        return message

    def delete(self, message_id: int) -> Message:
        """Soft-delete a message: it disappears from lists, but a rule that uses it still sends it."""
        message = self.get_message(message_id)
        message.deleted_at = utcnow()
        self.session.flush()
        return message

    def lock(self, message_id: int) -> Message:
        """Make a message non-editable because an opt-in rule uses it (deleted ones too, for old rules)."""
        message = self.repo.lock_message(self.get_message(message_id, include_deleted=True))
        message.locked = True
        self.session.flush()
        return message

    def _sender_id(self, sender_id: int | None) -> int | None:
        if sender_id is None:
            return None
        if self.repo.sender(self.actor.account_id, sender_id) is None:
            raise Invalid("sender_id", f"sender {sender_id} not found")
        return sender_id

    def _category_id(self, category_id: int | None) -> int | None:
        if category_id is None:
            return None
        from herald.lists.repository import ListRepository

        if ListRepository(self.session).category(self.actor.account_id, category_id) is None:
            raise Invalid("category_id", f"category {category_id} not found")
        return category_id


def _required(value: str | None, field: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise Invalid(field, "is required")
    if len(text) > limit:
        raise Invalid(field, f"must be at most {limit} characters")
    return text


def _subject(value: str | None) -> str:
    subject = _required(value, "subject", MAX_SUBJECT)
    if any(ch in subject for ch in "\r\n"):
        raise Invalid("subject", "must be a single line")
    return subject


def _optional(value: str | None, field: str, limit: int) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > limit:
        raise Invalid(field, f"must be at most {limit} characters")
    return text
