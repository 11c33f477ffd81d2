"""Sender, template and message services: tenancy, built-ins, locking and soft delete."""

from __future__ import annotations

from typing import Any

import pytest

from herald.actor import Actor
from herald.container import Container
from herald.errors import Invalid, NotAllowed, NotFound
from herald.lists.service import ListService
from herald.templates.service import MessageService, SenderService, TemplateService


def actor(account: dict[str, Any]) -> Actor:
    return Actor(account_id=account["account_id"], user_id=account["user_id"], source="api")


def test_sender_normalises_and_is_tenant_scoped(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    with container.transaction() as s:
        sender = SenderService(s, actor(account)).create(
            " News@Example.COM ", from_name="News", reply_to="Help@Example.com", address="1 Main St"
        )
        assert (sender.from_email, sender.reply_to) == ("news@example.com", "help@example.com")
        sid = sender.id
    with container.transaction() as s:
        assert SenderService(s, actor(account)).get_sender(sid).from_name == "News"
        with pytest.raises(NotFound):
            SenderService(s, actor(other_account)).get_sender(sid)
        with pytest.raises(Invalid) as err:
            SenderService(s, actor(account)).create("nope")
        assert err.value.field == "from_email"
        with pytest.raises(Invalid) as err:
            SenderService(s, actor(account)).create("a@example.com", reply_to="nope")
        assert err.value.field == "reply_to"


def test_builtin_templates_are_visible_to_every_account(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    with container.transaction() as s:
        mine = TemplateService(s, actor(account)).create("Mine", html="<p>x</p>")
        mine_id = mine.id
    with container.transaction() as s:
        for creds in (account, other_account):
            svc = TemplateService(s, actor(creds))
            assert svc.get_template(1).name == "Blank Template"
            assert {svc.get_template(i).account_id for i in (1, 2, 3)} == {None}
        assert TemplateService(s, actor(account)).get_template(mine_id).html == "<p>x</p>"
        with pytest.raises(NotFound):
            TemplateService(s, actor(other_account)).get_template(mine_id)
        with pytest.raises(NotFound):
            TemplateService(s, actor(account)).get_template(99999)


def test_message_lifecycle_lock_and_soft_delete(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    with container.transaction() as s:
        svc = MessageService(s, actor(account))
        msg = svc.create("Confirm", "Please confirm", html="<a>x</a>", customoptin=True)
        assert msg.user_id == account["user_id"] and msg.customoptin
        mid = msg.id
        assert svc.update(mid, subject="Confirm please").subject == "Confirm please"
        with pytest.raises(NotFound):
            MessageService(s, actor(other_account)).update(mid, name="x")
    with container.transaction() as s:
        MessageService(s, actor(account)).lock(mid)
    with container.transaction() as s:
        with pytest.raises(NotAllowed) as err:
            MessageService(s, actor(account)).update(mid, subject="changed")
        assert err.value.current_status == "locked"
    with container.transaction() as s:
        MessageService(s, actor(account)).delete(mid)
    with container.transaction() as s:
        svc = MessageService(s, actor(account))
        with pytest.raises(NotFound):
            svc.get_message(mid)
        deleted = svc.get_message(mid, include_deleted=True)
        assert deleted.subject == "Confirm please" and deleted.deleted_at is not None
        with pytest.raises(NotFound):
            svc.delete(mid)


def test_message_validation(container: Container, account: dict[str, Any], other_account: dict[str, Any]) -> None:
    with container.transaction() as s:
        foreign_sender = SenderService(s, actor(other_account)).create("o@example.com").id
        foreign_category = ListService(s, actor(other_account)).create_category("Theirs").id
        svc = MessageService(s, actor(account))
        for kwargs, field in [
            ({"name": "", "subject": "s"}, "name"),
            ({"name": "n", "subject": " "}, "subject"),
            ({"name": "n", "subject": "a\r\nBcc: x@example.com"}, "subject"),
            ({"name": "n" * 201, "subject": "s"}, "name"),
            ({"name": "n", "subject": "s", "sender_id": foreign_sender}, "sender_id"),
            ({"name": "n", "subject": "s", "category_id": foreign_category}, "category_id"),
        ]:
            with pytest.raises(Invalid) as err:
                svc.create(**kwargs)
            assert err.value.field == field
