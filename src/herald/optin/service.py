"""Opt-in automation rules: which message confirms a subscription to which list, under seed 004's rules.

Rules (seed 004, CONTRACT.md):
- one rule per list and one catch-all (`list_id` null) per account; omitting `list_id` is an error, only an
  explicit null makes a catch-all; `list_id` never changes once set;
- `message_id` names a message of the account with `customoptin` true that the user may access; using it
  in a rule locks the message (non-editable);
- only the rule's creator or an admin may change or delete it;
- with folder restrictions on, a non-admin user works only with lists in categories granted to them;
- a paused rule whose message was deleted or became inaccessible is un-paused only with a valid message_id;
- deleting the list or the message does not pause the rule (a deleted message is still sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from herald.accounts.repository import AccountRepository
from herald.actor import Actor
from herald.db.base import utcnow
from herald.errors import Conflict, Forbidden, Invalid, NotFound
from herald.lists.models import MailingList
from herald.optin.models import OptinRule
from herald.optin.repository import OptinRepository
from herald.templates.models import Message
from herald.templates.service import MessageService


class _Missing:
    """Marks a field the caller did not send (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
SORTABLE = ("id", "name", "cdate")
MAX_NAME = 300


@dataclass(frozen=True)
class RuleFilter:
    """Filters of a rule search (each None means "any"); `list_id` may be MISSING, None (catch-all) or an id."""

    ids: tuple[int, ...] | None = None
    list_id: int | None | _Missing = MISSING
    name: str | None = None
    paused: bool | None = None
    user_id: int | None = None


def unix(value: Any) -> int:
    """A stored timestamp as Unix seconds (Sign-Up.to cdate/mdate)."""
    return int(value.timestamp())


def rule_dict(rule: OptinRule) -> dict[str, Any]:
    """The Sign-Up.to optinAutomation object (also the native API's representation)."""
    return {
        "id": rule.id,
        "list_id": rule.list_id,
        "message_id": rule.message_id,
        "name": rule.name,
        "paused": rule.paused,
        "summary": rule.summary,
        "user_id": rule.user_id,
        "cdate": unix(rule.created_at),
        "mdate": unix(rule.updated_at),
    }


def generate_summary(list_name: str | None, message_name: str) -> str:
    """The English description a rule gets when none is given (worded as Sign-Up.to words it)."""
    target = f"the list '{list_name}'" if list_name is not None else "any list without its own opt-in rule"
    return (
        f"As soon as possible after a subscriber is added to {target}, "
        f"send the subscriber the opt-in email campaign '{message_name}'"
    )


class OptinRuleService:
    """Create, change, delete and find the opt-in rules of the actor's account."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self.repo = OptinRepository(session)

    # -- reads ----------------------------------------------------------------------------------
    def get(self, rule_id: int) -> OptinRule:
        """A rule the actor can see, or NotFound."""
        rule = self.repo.rule(self.actor.account_id, rule_id)
        if rule is None or not self._may_see(rule):
            raise NotFound("optinAutomation", rule_id)
        return rule

    def search(
        self,
        filters: RuleFilter,
        *,
        sort: str = "id",
        reverse: bool = False,
        start: int = 0,
        count: int | None = None,
        after_id: int = 0,
    ) -> tuple[list[OptinRule], int]:
        """One window of the rules matching `filters`, and how many match in all."""
        if sort not in SORTABLE:
            raise Invalid("sort", f"must be one of {', '.join(SORTABLE)}")
        stmt = self.repo.rules_query(self.actor.account_id)
        visible = self._visible_list_ids()
        if visible is not None:
            stmt = stmt.where(or_(OptinRule.list_id.is_(None), OptinRule.list_id.in_(visible)))
        if filters.ids is not None:
            stmt = stmt.where(OptinRule.id.in_(filters.ids))
        if after_id:
            stmt = stmt.where(OptinRule.id > after_id)
        if filters.list_id is None:
            stmt = stmt.where(OptinRule.list_id.is_(None))
        elif not isinstance(filters.list_id, _Missing):
            stmt = stmt.where(OptinRule.list_id == filters.list_id)
        if filters.name is not None:
            stmt = stmt.where(OptinRule.name == filters.name)
        if filters.paused is not None:
            stmt = stmt.where(OptinRule.paused.is_(filters.paused))
        if filters.user_id is not None:
            stmt = stmt.where(OptinRule.user_id == filters.user_id)
        total = self.repo.count(stmt)
        column: Any = {"id": OptinRule.id, "name": OptinRule.name, "cdate": OptinRule.created_at}[sort]
        order = [column.desc(), OptinRule.id.desc()] if reverse else [column.asc(), OptinRule.id.asc()]
        stmt = stmt.order_by(*order).offset(max(start, 0))
        if count is not None:
            stmt = stmt.limit(count)
        return list(self.repo.run(stmt)), total

    # -- writes ---------------------------------------------------------------------------------
    def create(
        self,
        *,
        list_id: int | None | _Missing,
        message_id: int | None,
        name: str | None,
        paused: bool = False,
        summary: str | None = None,
    ) -> OptinRule:
        """A new rule (see the module rules); the message becomes non-editable."""
        if isinstance(list_id, _Missing):
            raise Invalid("list_id", "is required (an explicit null makes the account's catch-all rule)")
        clean_name = _name(name)
        mailing_list = self._usable_list(list_id) if list_id is not None else None
        if list_id is not None and self.repo.rule_for_list(self.actor.account_id, list_id) is not None:
            raise Conflict(f"list {list_id} already has an opt-in rule", field="list_id")
        if list_id is None and self.repo.catch_all(self.actor.account_id) is not None:
            raise Conflict("the account already has a catch-all opt-in rule", field="list_id")
        message = self._usable_message(message_id)
        now = utcnow()
        rule = OptinRule(
            account_id=self.actor.account_id,
            user_id=self._creator_id(),
            list_id=list_id,
            message_id=message.id,
            name=clean_name,
            paused=bool(paused),
            summary=_summary(summary) or generate_summary(mailing_list.name if mailing_list else None, message.name),
            catch_all_key="*" if list_id is None else None,
            created_at=now,
            updated_at=now,
        )
        try:
            with self.session.begin_nested():
                self.repo.add(rule)
        except IntegrityError:
            raise Conflict("an opt-in rule for this list already exists", field="list_id") from None
        MessageService(self.session, self.actor).lock(message.id)
        return rule

    def update(self, rule_id: int, changes: dict[str, Any]) -> OptinRule:
        """Change name, message, paused or summary of a rule the actor owns (or any, as an admin)."""
        rule = self.get(rule_id)
        self._check_owner(rule)
        unknown = set(changes) - {
            "id",
            "list_id",
            "message_id",
            "name",
            "paused",
            "summary",
            "user_id",
            "cdate",
            "mdate",
        }
        if unknown:
            field = sorted(unknown)[0]
            raise Invalid(field, "is not a field of optinAutomation")
        if "list_id" in changes and changes["list_id"] != rule.list_id:
            raise Invalid("list_id", "cannot be modified once set")
        if "user_id" in changes and changes["user_id"] != rule.user_id:
            raise Invalid("user_id", "cannot be modified")
        if rule.list_id is not None:
            self._check_list_access(self.repo.any_list(self.actor.account_id, rule.list_id))
        old_summary = generate_summary(self._list_name(rule), self._message_name(rule.message_id))
        message: Message | None = None
        if "message_id" in changes:
            message = self._usable_message(changes["message_id"])
        paused = rule.paused
        if "paused" in changes:
            if not isinstance(changes["paused"], bool):
                raise Invalid("paused", "must be true or false")
            paused = changes["paused"]
        if rule.paused and not paused and message is None and not self._message_usable(rule.message_id):
            raise Invalid(
                "paused",
                f"cannot un-pause: message {rule.message_id} was deleted or is inaccessible; "
                "set message_id to a valid message",
            )
        if "name" in changes:
            rule.name = _name(changes["name"])
        if message is not None:
            rule.message_id = message.id
            MessageService(self.session, self.actor).lock(message.id)
        rule.paused = paused
        if "summary" in changes and _summary(changes["summary"]):
            rule.summary = _summary(changes["summary"])
        elif "summary" in changes or rule.summary == old_summary:
            # An explicit null, or a summary we wrote ourselves, follows the rule's new message.
            rule.summary = generate_summary(self._list_name(rule), self._message_name(rule.message_id))
        rule.updated_at = utcnow()
        self.session.flush()
        return rule

    def delete(self, rule_id: int) -> None:
        """Remove a rule the actor owns (or any, as an admin)."""
        rule = self.get(rule_id)
        self._check_owner(rule)
        self.repo.delete(rule)

    # -- checks ---------------------------------------------------------------------------------
    def _creator_id(self) -> int:
        if self.actor.user_id is not None:
            return self.actor.user_id
        # Account-level keys act as the account's first admin.
        admin = AccountRepository(self.session).first_admin(self.actor.account_id)
        if admin is None:
            raise Forbidden("no user to own the rule")
        return admin.id

    def _check_owner(self, rule: OptinRule) -> None:
        if not self.actor.is_admin and rule.user_id != self.actor.user_id:
            raise Forbidden("only the rule's creator or an admin may change or delete it")

    def _restricted(self) -> bool:
        if self.actor.is_admin or self.actor.user_id is None:
            return False
        account = self.repo.account(self.actor.account_id)
        return bool(account and account.folder_restrictions)

    def _granted(self) -> set[int]:
        return self.repo.granted_category_ids(self.actor.user_id) if self.actor.user_id is not None else set()

    def _visible_list_ids(self) -> Any:
        """None when every list is visible; else a subquery of the lists the user's categories allow."""
        if not self._restricted():
            return None
        granted = self._granted()
        return select(MailingList.id).where(
            MailingList.account_id == self.actor.account_id,
            or_(MailingList.category_id.is_(None), MailingList.category_id.in_(granted)),
        )

    def _may_see(self, rule: OptinRule) -> bool:
        if rule.list_id is None or not self._restricted():
            return True
        mailing_list = self.repo.any_list(self.actor.account_id, rule.list_id)
        return mailing_list is None or mailing_list.category_id is None or mailing_list.category_id in self._granted()

    def _check_list_access(self, mailing_list: MailingList | None) -> None:
        if mailing_list is None or mailing_list.category_id is None or not self._restricted():
            return
        if mailing_list.category_id not in self._granted():
            raise Forbidden(f"list {mailing_list.id} is in a folder you have no access to")

    def _usable_list(self, list_id: Any) -> MailingList:
        if isinstance(list_id, bool) or not isinstance(list_id, int):
            raise Invalid("list_id", "must be an integer or null")
        mailing_list = self.repo.any_list(self.actor.account_id, list_id)
        if mailing_list is None or mailing_list.deleted_at is not None:
            raise Invalid("list_id", f"list {list_id} not found")
        self._check_list_access(mailing_list)
        return mailing_list

    def _message_accessible(self, message: Message | None) -> bool:
        if message is None or message.deleted_at is not None:
            return False
        if message.category_id is not None and self._restricted():
            return message.category_id in self._granted()
        return True

    def _message_usable(self, message_id: int) -> bool:
        message = self.repo.message(self.actor.account_id, message_id)
        return self._message_accessible(message) and message is not None and message.customoptin

    def _usable_message(self, message_id: Any) -> Message:
        if message_id is None:
            raise Invalid("message_id", "is required")
        if isinstance(message_id, bool) or not isinstance(message_id, int):
            raise Invalid("message_id", "must be an integer")
        message = self.repo.message(self.actor.account_id, message_id)
        if message is None or not self._message_accessible(message):
            raise Invalid("message_id", f"message {message_id} not found")
        if not message.customoptin:
            raise Invalid("message_id", f"message {message_id} is not a custom opt-in message (customoptin false)")
        return message

    def _list_name(self, rule: OptinRule) -> str | None:
        if rule.list_id is None:
            return None
        mailing_list = self.repo.any_list(self.actor.account_id, rule.list_id)
        return mailing_list.name if mailing_list is not None else f"#{rule.list_id}"

    def _message_name(self, message_id: int) -> str:
        message = self.repo.message(self.actor.account_id, message_id)
        return message.name if message is not None else f"#{message_id}"


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid("name", "is required")
    value = name.strip()
    if len(value) > MAX_NAME:
        raise Invalid("name", f"must be at most {MAX_NAME} characters")
    return value


def _summary(summary: Any) -> str | None:
    if summary is None:
        return None
    if not isinstance(summary, str):
        raise Invalid("summary", "must be a string or null")
    return summary.strip()[:2000] or None
