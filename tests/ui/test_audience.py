"""Dashboard, lists, categories, topics, segments, senders and webhooks pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.contacts.service import ContactService
from herald.container import Container
from herald.lists.service import ListService

PAGES = ["/ui/", "/ui/contacts", "/ui/import", "/ui/lists", "/ui/categories", "/ui/topics", "/ui/segments",
         "/ui/senders", "/ui/webhooks"]  # fmt: skip


def _actor(creds: dict[str, Any]) -> Actor:
    return Actor(account_id=creds["account_id"], source="api")


@pytest.mark.parametrize("path", PAGES)
def test_each_page_renders_for_a_signed_in_user_only(ui_client: TestClient, app: Any, path: str) -> None:
    page = ui_client.get(path)
    assert page.status_code == 200 and 'aria-current="page"' in page.text
    with TestClient(app, base_url="http://herald.test") as anonymous:
        assert anonymous.get(path, follow_redirects=False).status_code == 303


def test_dashboard_counts_audience_by_state(
    ui_client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    with container.transaction() as session:
        consent = ConsentService(session, _actor(account))
        consent.set_status("a@example.com", "opted_in", create=True)
        consent.set_status("b@example.com", "opted_out", create=True)
    page = ui_client.get("/ui/").text
    assert "2 known addresses" in page
    assert 'id="activity-data"' in page and '"Unsubscribes"' in page


def test_create_list_and_add_subscribers(
    ui_client: TestClient, token: str, container: Container, account: dict[str, Any]
) -> None:
    response = ui_client.post("/ui/lists", data={"csrf_token": token, "name": "News"}, follow_redirects=False)
    assert response.status_code == 303
    url = response.headers["location"]
    added = ui_client.post(url + "/subscribers", data={"csrf_token": token, "email": " Ada@Example.com "})
    assert added.status_code == 200 and "ada@example.com" in added.text and "1 active" in added.text
    with container.transaction() as session:
        ConsentService(session, _actor(account)).set_status("out@example.com", "opted_out", create=True)
    refused = ui_client.post(url + "/subscribers", data={"csrf_token": token, "email": "out@example.com"})
    assert refused.status_code == 409 and "Refused: out@example.com cannot be subscribed (opted_out)" in refused.text
    assert "1 active" in refused.text


def test_empty_names_are_refused_inline(ui_client: TestClient, token: str) -> None:
    for path in ("/ui/lists", "/ui/categories", "/ui/topics"):
        response = ui_client.post(path, data={"csrf_token": token, "name": "  "})
        assert response.status_code == 422 and "flash-error" in response.text, path


def test_categories_topics_senders_webhooks(ui_client: TestClient, token: str) -> None:
    assert "Promotions" in ui_client.post("/ui/categories", data={"csrf_token": token, "name": "Promotions"}).text
    topic = ui_client.post("/ui/topics", data={"csrf_token": token, "name": "Product news", "enabled": "1"})
    assert "Product news" in topic.text
    sender = ui_client.post(
        "/ui/senders", data={"csrf_token": token, "from_email": "News@Acme.example", "from_name": "Acme"}
    )
    assert "news@acme.example" in sender.text
    bad = ui_client.post("/ui/senders", data={"csrf_token": token, "from_email": "nope"})
    assert bad.status_code == 422 and "from email" in bad.text
    hook = ui_client.post(
        "/ui/webhooks", data={"csrf_token": token, "url": "https://hooks.example.com/h", "events": ["list.subscribed"]}
    )
    assert hook.status_code == 200 and "https://hooks.example.com/h" in hook.text
    refused = ui_client.post("/ui/webhooks", data={"csrf_token": token, "url": "ftp://x"})
    assert refused.status_code == 422


def test_webhook_delete_is_scoped_to_the_account(ui_client: TestClient, other_client: TestClient, token: str) -> None:
    ui_client.post("/ui/webhooks", data={"csrf_token": token, "url": "https://hooks.example.com/h"})
    page = ui_client.get("/ui/webhooks").text
    hook_id = page.split('action="/ui/webhooks/')[1].split("/")[0]
    other_token = other_client.get("/ui/").text.split('name="csrf_token" value="')[1].split('"')[0]
    assert other_client.post(f"/ui/webhooks/{hook_id}/delete", data={"csrf_token": other_token}).status_code == 404
    assert "https://hooks.example.com/h" in ui_client.get("/ui/webhooks").text
    ui_client.post(f"/ui/webhooks/{hook_id}/delete", data={"csrf_token": token})
    assert "No webhooks yet" in ui_client.get("/ui/webhooks").text


def test_segment_live_count_and_save(
    ui_client: TestClient, token: str, container: Container, account: dict[str, Any]
) -> None:
    with container.transaction() as session:
        contacts = ContactService(session, _actor(account))
        contacts.create("de1@example.com", {"country": "DE"})
        contacts.create("de2@example.com", {"country": "DE"})
        contacts.create("fr@example.com", {"country": "FR"})
    rules = json.dumps({"all": [{"field": "country", "op": "eq", "value": "DE"}]})
    count = ui_client.post(
        "/ui/segments/count", data={"rules": rules}, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert count.status_code == 200 and '<span class="count-live">2</span>' in count.text
    assert "<html" not in count.text
    broken = ui_client.post(
        "/ui/segments/count", data={"rules": '{"all": [{"field": "nope"}]}'}, headers={"X-CSRF-Token": token}
    )
    assert "unknown field" in broken.text
    saved = ui_client.post(
        "/ui/segments", data={"csrf_token": token, "name": "Germany", "rules": rules}, follow_redirects=False
    )
    assert saved.status_code == 303
    page = ui_client.get(saved.headers["location"]).text
    assert "2 matching contacts now" in page and "de1@example.com" in page and "fr@example.com" not in page
    invalid = ui_client.post("/ui/segments", data={"csrf_token": token, "name": "x", "rules": "not json"})
    assert invalid.status_code == 422 and "not valid JSON" in invalid.text


def test_other_accounts_lists_and_segments_are_404(
    ui_client: TestClient, token: str, container: Container, other_account: dict[str, Any]
) -> None:
    with container.transaction() as session:
        theirs = ListService(session, _actor(other_account)).create_list("Theirs").id
        segment = (
            ContactService(session, _actor(other_account))
            .create_segment("S", {"all": [{"field": "country", "op": "eq", "value": "DE"}]})
            .id
        )
    assert ui_client.get(f"/ui/lists/{theirs}").status_code == 404
    assert ui_client.get(f"/ui/segments/{segment}").status_code == 404
    response = ui_client.post(f"/ui/lists/{theirs}/subscribers", data={"csrf_token": token, "email": "x@example.com"})
    assert response.status_code == 404
    with container.transaction() as session:
        assert ListService(session, _actor(other_account)).subscriptions(theirs) == []
