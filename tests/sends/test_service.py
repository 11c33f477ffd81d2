"""SendService: lifecycle rules, validation, ownership, duplicate, delete, schedule, cancel and pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.container import Container
from herald.errors import Invalid, NotAllowed, NotFound
from herald.sends.models import Delivery, SingleSend
from herald.sends.schemas import ScheduleIn, SendPatch
from herald.sends.service import SendService, local_to_utc
from tests.sends.factory import World, actor, add_contact, send_in, world


@pytest.fixture
def w(container: Container, account: dict[str, Any]) -> World:
    with container.transaction() as s:
        return world(s, account["account_id"])


def _svc(s: Any, w: World, **kw: Any) -> SendService:
    return SendService(s, actor(w.account_id, **kw))


def test_create_now_is_ready_owned_by_first_admin(container: Container, account: dict[str, Any], w: World) -> None:
    with container.transaction() as s:
        send = _svc(s, w).create(send_in(w, schedule_type=0))
        assert send.status == 1 and send.scheduled_at is not None
        assert send.user_id == account["user_id"]
        assert len(send.utr) == 36 and send.utr.count("-") == 4
        assert send.recipients == [{"id": str(w.type_id), "table": "contacts_"}]


def test_create_without_schedule_type_is_a_draft(container: Container, w: World) -> None:
    with container.transaction() as s:
        send = _svc(s, w).create(send_in(w))
        assert (send.status, send.scheduled_at) == (0, None)


def test_schedule_converts_local_time_to_utc(container: Container, w: World) -> None:
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    with container.transaction() as s:
        send = _svc(s, w).create(
            send_in(w, schedule_type=1, schedule_date=day, schedule_time="10:30", timezone="Europe/Berlin")
        )
        assert send.status == 1 and send.schedule_time == "10:30:00" and send.schedule_date == day
        assert send.scheduled_at == local_to_utc(day, "10:30", "Europe/Berlin")
        assert send.scheduled_at.hour in (8, 9)  # CET/CEST


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"schedule_type": 1}, "schedule_date"),
        ({"schedule_type": 1, "schedule_date": "2999-01-01"}, "schedule_time"),
        ({"schedule_type": 1, "schedule_date": "01/02/2999", "schedule_time": "10:00"}, "schedule_date"),
        ({"schedule_type": 1, "schedule_date": "2000-01-01", "schedule_time": "10:00"}, "schedule_date"),
        (
            {"schedule_type": 1, "schedule_date": "2999-01-01", "schedule_time": "10:00", "timezone": "Mars/X"},
            "timezone",
        ),
        ({"sender_id": 99999}, "sender_id"),
        ({"template_id": 99999}, "template_id"),
        ({"unsubscribe_group_id": 99999}, "unsubscribe_group_id"),
        ({"recipient_id": ["contacts_99999"]}, "recipient_id"),
        ({"recipient_id": ["lists_1"]}, "recipient_id"),
        ({"exclude_specific_recipient_id": ["segments_99999"]}, "exclude_specific_recipient_id"),
        ({"subject": "Hi ((frist_name))"}, "subject"),
        ({"preheader": "((nope))"}, "preheader"),
        ({"template_html": "<p>((nope))</p>"}, "template_html"),
    ],
)
def test_bad_input_names_the_field_and_creates_nothing(
    container: Container, w: World, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as exc, container.transaction() as s:
        _svc(s, w).create(send_in(w, **overrides))
    assert exc.value.field == field
    with container.transaction() as s:
        assert s.query(SingleSend).count() == 0


def test_other_accounts_objects_are_refused(container: Container, w: World) -> None:
    from tests.conftest import make_account

    other = make_account(container, "other")
    with container.transaction() as s:
        ow = world(s, other["account_id"])
    with pytest.raises(Invalid) as exc, container.transaction() as s:
        _svc(s, w).create(send_in(w, sender_id=ow.sender_id))
    assert exc.value.field == "sender_id"
    with pytest.raises(Invalid), container.transaction() as s:
        _svc(s, w).create(send_in(w, recipient_id=[f"contacts_{ow.type_id}"]))
    with container.transaction() as s:
        send = _svc(s, w).create(send_in(w))
    with pytest.raises(NotFound), container.transaction() as s:
        _svc(s, ow).get(send.id)
    with pytest.raises(NotFound), container.transaction() as s:
        _svc(s, ow).by_utr(send.utr)


def test_edits_only_before_running(container: Container, w: World) -> None:
    with container.transaction() as s:
        svc = _svc(s, w)
        send = svc.create(send_in(w, schedule_type=0))
        svc.update(send, SendPatch(subject="New subject"))
        assert send.subject == "New subject" and send.status == 1
        svc.launch(send)
        assert send.status in (2, 3)
        with pytest.raises(NotAllowed) as exc:
            svc.update(send, SendPatch(subject="Too late"))
        assert exc.value.current_status in ("running", "completed")
        with pytest.raises(NotAllowed):
            svc.schedule(send, ScheduleIn(schedule_type=0))


def test_patch_only_changes_given_fields(container: Container, w: World) -> None:
    with container.transaction() as s:
        svc = _svc(s, w)
        send = svc.create(send_in(w, exclude_specific_recipient_id=[f"contacts_{w.other_type_id}"]))
        svc.update(send, SendPatch(single_send_name="Renamed"))
        assert send.name == "Renamed" and send.subject == "Hello ((first_name|there))"
        assert send.exclusions == [{"id": str(w.other_type_id), "table": "contacts_"}]
        assert send.status == 0


def test_duplicate_copies_content_never_state_or_deliveries(container: Container, w: World) -> None:
    with container.transaction() as s:
        add_contact(s, w.account_id, "a@example.com", type_id=w.type_id)
        svc = _svc(s, w)
        send = svc.create(send_in(w, schedule_type=0, template_html="<p>hi</p>"))
        svc.launch(send)
        copy = svc.duplicate(send)
        assert copy.utr != send.utr and copy.id != send.id
        assert (copy.status, copy.sent_at, copy.skipped, copy.scheduled_at) == (0, None, {}, None)
        assert (copy.name, copy.subject, copy.template_html, copy.recipients, copy.topic_id) == (
            send.name,
            send.subject,
            send.template_html,
            send.recipients,
            send.topic_id,
        )
        assert s.query(Delivery).filter_by(send_id=copy.id).count() == 0
        assert s.query(Delivery).filter_by(send_id=send.id).count() == 1


def test_cancel_ready_goes_back_to_initiate_and_can_be_rescheduled(container: Container, w: World) -> None:
    with container.transaction() as s:
        svc = _svc(s, w)
        send = svc.create(send_in(w, schedule_type=0))
        svc.cancel(send)
        assert (send.status, send.cancelled, send.scheduled_at) == (0, True, None)
        with pytest.raises(NotAllowed) as exc:
            svc.cancel(send)
        assert exc.value.current_status == "initiate"
        svc.schedule(send, ScheduleIn(schedule_type=0))
        assert (send.status, send.cancelled) == (1, False)


def test_cancel_running_withdraws_unsent_deliveries(container: Container, w: World) -> None:
    with container.transaction() as s:
        add_contact(s, w.account_id, "a@example.com", type_id=w.type_id)
        add_contact(s, w.account_id, "b@example.com", type_id=w.type_id)
        svc = _svc(s, w)
        send = svc.create(send_in(w, schedule_type=0))
        svc.launch(send)
        assert send.status == 2
        svc.cancel(send)
        assert (send.status, send.cancelled) == (3, True)
        statuses = {d.status for d in s.query(Delivery).filter_by(send_id=send.id)}
        assert statuses == {"cancelled"}


def test_pause_and_resume(container: Container, w: World) -> None:
    with container.transaction() as s:
        svc = _svc(s, w)
        send = svc.create(send_in(w))
        with pytest.raises(NotAllowed):
            svc.pause(send)  # a draft has nothing to hold
        svc.schedule(send, ScheduleIn(schedule_type=0))
        svc.pause(send)
        assert send.paused
        with pytest.raises(NotAllowed) as exc:
            svc.pause(send)
        assert exc.value.current_status == "paused"
        svc.resume(send)
        assert not send.paused
        with pytest.raises(NotAllowed):
            svc.resume(send)


def test_delete_and_bulk_delete_are_soft_and_scoped(container: Container, w: World) -> None:
    from tests.conftest import make_account

    other = make_account(container, "other")
    with container.transaction() as s:
        ow = world(s, other["account_id"])
        theirs = _svc(s, ow).create(send_in(ow))
        svc = _svc(s, w)
        a, b, c = (svc.create(send_in(w)) for _ in range(3))
        svc.delete(a)
        assert a.deleted_at is not None
        with pytest.raises(NotFound):
            svc.get(a.id)
        with pytest.raises(NotFound):
            svc.bulk_delete([a.id, theirs.id, 424242])
        assert svc.bulk_delete([b.id, c.id, theirs.id]) == 2
        assert theirs.deleted_at is None
        assert list(svc.all()) == []
        assert s.get(SingleSend, b.id) is not None
