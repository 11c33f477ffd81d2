"""Single-send pages through the real app: editor, preview, eligible count, actions, progress, stats, tenancy, CSRF."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from herald.contacts.models import Contact
from herald.container import Container
from herald.sends.launcher import launch_due
from herald.sends.models import Delivery, SingleSend
from tests.sends.factory import World, add_contact, world


def _world(container: Container, account: dict[str, Any]) -> World:
    with container.transaction() as s:
        w = world(s, account["account_id"])
        aid = account["account_id"]
        add_contact(s, aid, "ann@example.com", type_id=w.type_id)
        add_contact(s, aid, "bob@example.com", type_id=w.type_id, status="opted_out")
        add_contact(s, aid, "cy@example.com", type_id=w.type_id, status="bounced")
        add_contact(s, aid, "dee@example.com", type_id=w.other_type_id)
        ann = s.scalars(select(Contact).where(Contact.email == "ann@example.com")).one()
        ann.first_name = "Ann"
    return w


def _form(token: str, w: World, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": token,
        "single_send_name": "Spring news",
        "subject": "Hello ((first_name|there))",
        "preheader": "What is new",
        "sender_id": str(w.sender_id),
        "template_id": "2",
        "template_html": "",
        "unsubscribe_group_id": str(w.topic_id),
        "list_id": "",
        "recipient_id": [f"contacts_{w.type_id}"],
        "when": "draft",
        "schedule_date": "",
        "schedule_time": "",
        "timezone": "UTC",
    }
    data.update(overrides)
    return data


def _sends(container: Container) -> list[SingleSend]:
    with container.sessions() as s:
        return list(s.scalars(select(SingleSend).order_by(SingleSend.id)))


def _create(client: TestClient, token: str, w: World, **overrides: Any) -> int:
    r = client.post("/ui/sends/new", data=_form(token, w, **overrides), follow_redirects=False)
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"/ui/sends/(\d+)", r.headers["location"])
    assert match
    return int(match.group(1))


def test_every_send_page_renders(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    w = _world(container, account)
    assert "No sends yet" in ui_client.get("/ui/sends").text
    editor = ui_client.get("/ui/sends/new")
    assert editor.status_code == 200
    for text in (
        "Newsletter",
        "Blank Template",
        "((first_name))",
        "((unsubscribe_preferences))",
        "Newsletter",
        "Europe/Paris",
    ):
        assert text in editor.text
    assert f'value="contacts_{w.type_id}"' in editor.text and f'value="segments_{w.segment_id}"' in editor.text
    send_id = _create(ui_client, token, w)
    page = ui_client.get(f"/ui/sends/{send_id}")
    assert page.status_code == 200 and "Spring news" in page.text and "draft" in page.text
    assert 'data-eligible="1"' in page.text  # ann only: bob opted out, cy bounced
    assert ui_client.get(f"/ui/sends/{send_id}/edit").status_code == 200
    listing = ui_client.get("/ui/sends")
    assert f'href="/ui/sends/{send_id}"' in listing.text


def test_signed_out_goes_to_sign_in(client: TestClient) -> None:
    for path in ("/ui/sends", "/ui/sends/new", "/ui/sends/1", "/ui/messages", "/ui/optin", "/ui/outbox"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login"), path


def test_create_refusal_is_shown_and_nothing_saved(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    w = _world(container, account)
    r = ui_client.post("/ui/sends/new", data=_form(token, w, recipient_id=[]))
    assert r.status_code == 422 and "choose at least one contact type or segment" in r.text
    assert "Spring news" in r.text  # the form keeps what was typed
    r = ui_client.post("/ui/sends/new", data=_form(token, w, subject="Hi ((frist_name))"))
    assert r.status_code == 422 and "frist_name" in r.text
    r = ui_client.post(
        "/ui/sends/new", data=_form(token, w, when="at", schedule_date="2001-01-01", schedule_time="10:00")
    )
    assert r.status_code == 422 and "must not be in the past" in r.text
    r = ui_client.post("/ui/sends/new", data=_form(token, w, sender_id="abc"))
    assert r.status_code == 422
    assert _sends(container) == []


def test_csrf_is_enforced_on_every_post(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    w = _world(container, account)
    send_id = _create(ui_client, token, w)
    posts = [
        ("/ui/sends/new", _form("forged", w)),
        ("/ui/sends/preview", _form("", w)),
        ("/ui/sends/count", _form("", w)),
        (f"/ui/sends/{send_id}/edit", _form("", w, single_send_name="Changed")),
        (f"/ui/sends/{send_id}/send-now", {}),
        (f"/ui/sends/{send_id}/delete", {}),
        (f"/ui/sends/{send_id}/duplicate", {"csrf_token": "forged"}),
    ]
    for path, data in posts:
        if data.get("csrf_token") == "":
            del data["csrf_token"]
        r = ui_client.post(path, data=data)
        assert r.status_code == 403, path
    sends = _sends(container)
    assert [(s.name, s.status, s.deleted_at) for s in sends] == [("Spring news", 0, None)]


def test_another_accounts_send_is_404(
    ui_client: TestClient, other_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    from tests.ui.conftest import csrf_token

    w = _world(container, account)
    send_id = _create(ui_client, token, w)
    other_token = csrf_token(other_client)
    for path in (f"/ui/sends/{send_id}", f"/ui/sends/{send_id}/edit", f"/ui/sends/{send_id}/progress"):
        assert other_client.get(path).status_code == 404, path
    for action in ("send-now", "cancel", "delete", "duplicate", "edit"):
        r = other_client.post(f"/ui/sends/{send_id}/{action}", data=_form(other_token, w))
        assert r.status_code == 404, action
    assert "Spring news" not in other_client.get("/ui/sends").text
    # Their count and preview cannot reach this account's targets either.
    r = other_client.post("/ui/sends/count", data=_form(other_token, w))
    assert "not found" in r.text and "data-eligible" not in r.text
    assert [(s.status, s.deleted_at) for s in _sends(container)] == [(0, None)]


def test_preview_is_the_rendered_message_in_a_sandbox(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    w = _world(container, account)
    html = "<p>Dear ((first_name|friend)), <a href='https://acme.test/x'>read</a></p><script>alert(1)</script>"
    r = ui_client.post("/ui/sends/preview", data=_form(token, w, template_html=html))
    assert r.status_code == 200
    assert 'sandbox=""' in r.text and "srcdoc=" in r.text
    assert "Rendered for ann@example.com" in r.text
    assert "Hello Ann" in r.text  # the subject, merged
    assert "Dear Ann" in r.text
    assert "http://herald.test/t/c/" in r.text  # the tracked link, as recipients get it
    assert "<script>" not in r.text  # the mail is an escaped attribute value, never markup of our page
    # A blank design with no HTML has nothing to show; bad input is reported, not a 500.
    r = ui_client.post("/ui/sends/preview", data=_form(token, w, template_id="1"))
    assert "Nothing to show yet" in r.text
    r = ui_client.post("/ui/sends/preview", data=_form(token, w, sender_id="x"))
    assert r.status_code == 200 and "sender_id" in r.text


def test_eligible_count_matches_what_launch_materialises(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    w = _world(container, account)
    both = [f"contacts_{w.type_id}", f"contacts_{w.other_type_id}"]
    r = ui_client.post("/ui/sends/count", data=_form(token, w, recipient_id=both))
    assert 'data-eligible="2"' in r.text and "of 4 reached" in r.text
    assert "1 left out: opted out" in r.text and "1 left out: bounced" in r.text
    r = ui_client.post(
        "/ui/sends/count",
        data=_form(token, w, recipient_id=both, exclude_specific_recipient_id=[f"contacts_{w.other_type_id}"]),
    )
    assert 'data-eligible="1"' in r.text
    r = ui_client.post("/ui/sends/count", data=_form(token, w, recipient_id=["segments_999"]))
    assert "segment 999 not found" in r.text
    send_id = _create(ui_client, token, w, recipient_id=both, when="now")
    launch_due(container)
    with container.sessions() as s:
        queued = s.scalar(select(func.count()).where(Delivery.send_id == send_id, Delivery.status == "queued"))
    assert queued == 2


def test_actions_and_their_refusals(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    w = _world(container, account)
    send_id = _create(ui_client, token, w)
    post = lambda action: ui_client.post(f"/ui/sends/{send_id}/{action}", data={"csrf_token": token})  # noqa: E731
    r = post("pause")
    assert "Refused: Cannot pause a single send that is initiate" in r.text
    assert post("send-now").status_code == 200
    assert _sends(container)[0].status == 1
    assert "Paused." in post("pause").text and _sends(container)[0].paused
    assert "Resumed." in post("resume").text and not _sends(container)[0].paused
    assert "Cancelled." in post("cancel").text and _sends(container)[0].status == 0
    r = post("duplicate")
    assert "Duplicated" in r.text
    sends = _sends(container)
    assert len(sends) == 2 and sends[1].name == "Spring news" and sends[1].status == 0
    assert post("bogus").status_code == 200 and _sends(container)[0].status == 0
    assert "Deleted" in post("delete").text
    assert ui_client.get(f"/ui/sends/{send_id}").status_code == 404


def test_edit_saves_and_schedules(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    w = _world(container, account)
    send_id = _create(ui_client, token, w)
    data = _form(
        token,
        w,
        single_send_name="Renamed",
        when="at",
        schedule_date="2099-05-01",
        schedule_time="09:30",
        timezone="Europe/Paris",
    )
    r = ui_client.post(f"/ui/sends/{send_id}/edit", data=data)
    assert r.status_code == 200 and "scheduled" in r.text
    send = _sends(container)[0]
    assert (send.name, send.status, send.schedule_date, send.timezone) == ("Renamed", 1, "2099-05-01", "Europe/Paris")
    editor = ui_client.get(f"/ui/sends/{send_id}/edit").text
    assert 'value="2099-05-01"' in editor and "<option selected>Europe/Paris</option>" in editor


def test_running_send_shows_live_progress_then_stats_and_recipients(
    ui_client: TestClient, container: Container, account: dict[str, Any], token: str
) -> None:
    w = _world(container, account)
    both = [f"contacts_{w.type_id}", f"contacts_{w.other_type_id}"]
    send_id = _create(ui_client, token, w, recipient_id=both, when="now")
    launch_due(container)
    page = ui_client.get(f"/ui/sends/{send_id}")
    assert "sending" in page.text and 'hx-trigger="every 1s"' in page.text and 'aria-valuenow="0"' in page.text
    # Editing a running send is refused (the editor redirects with a reason; a forced post shows the refusal).
    assert "cannot be edited" in ui_client.get(f"/ui/sends/{send_id}/edit").text
    r = ui_client.post(f"/ui/sends/{send_id}/edit", data=_form(token, w))
    assert r.status_code == 422 and "Cannot edit a single send that is running" in r.text
    with container.transaction() as s:
        first = s.scalars(select(Delivery.id).where(Delivery.send_id == send_id, Delivery.status == "queued")).first()
        s.execute(update(Delivery).where(Delivery.id == first).values(status="sent", sent_at=func.now()))
    fragment = ui_client.get(f"/ui/sends/{send_id}/progress?seen=2", headers={"HX-Request": "true"})
    assert 'aria-valuenow="50"' in fragment.text and "HX-Refresh" not in fragment.headers
    with container.transaction() as s:
        s.execute(
            update(Delivery).where(Delivery.send_id == send_id, Delivery.status == "queued").values(status="bounced")
        )
        s.execute(update(SingleSend).where(SingleSend.id == send_id).values(status=3))
    fragment = ui_client.get(f"/ui/sends/{send_id}/progress?seen=2", headers={"HX-Request": "true"})
    assert fragment.headers.get("HX-Refresh") == "true" and 'aria-valuenow="100"' in fragment.text
    page = ui_client.get(f"/ui/sends/{send_id}")
    assert "every 1s" not in page.text
    assert re.search(r'data-stat="triggered"><span class="value">2<', page.text)
    assert re.search(r'data-stat="bounces"><span class="value">1<', page.text)
    assert "ann@example.com" in page.text and "left out at launch" in page.text.lower()
    only_bounced = ui_client.get(f"/ui/sends/{send_id}?status=bounced").text
    assert "dee@example.com" in only_bounced and "ann@example.com" not in only_bounced
    assert "bob@example.com" in ui_client.get(f"/ui/sends/{send_id}?status=suppressed").text
