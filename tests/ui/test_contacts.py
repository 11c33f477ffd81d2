"""Contacts in the admin UI: search, the consent timeline, status changes and CSV import."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from herald.actor import Actor
from herald.consent.service import ConsentService
from herald.contacts.service import ContactService
from herald.container import Container


def _contact(container: Container, creds: dict[str, Any], email: str, **values: Any) -> int:
    actor = Actor(account_id=creds["account_id"], source="api")
    with container.transaction() as session:
        return ContactService(session, actor, hash_key=container.hash_key).create(email, values).id


def _status(container: Container, creds: dict[str, Any], email: str) -> str:
    actor = Actor(account_id=creds["account_id"], source="api")
    with container.transaction() as session:
        return ConsentService(session, actor).get(email).status


def _address_id(container: Container, creds: dict[str, Any], email: str) -> int:
    actor = Actor(account_id=creds["account_id"], source="api")
    with container.transaction() as session:
        return ConsentService(session, actor).get(email).id


def test_search_by_email_and_name(ui_client: TestClient, container: Container, account: dict[str, Any]) -> None:
    _contact(container, account, "ada@example.com", first_name="Ada", last_name="Lovelace")
    _contact(container, account, "grace@example.com", first_name="Grace", last_name="Hopper")
    by_name = ui_client.get("/ui/contacts", params={"q": "lovel"}).text
    assert "ada@example.com" in by_name and "grace@example.com" not in by_name
    by_email = ui_client.get("/ui/contacts", params={"q": "GRACE@"}).text
    assert "grace@example.com" in by_email and "ada@example.com" not in by_email
    nothing = ui_client.get("/ui/contacts", params={"q": "100%_"}).text
    assert "No contact matches" in nothing


def test_search_never_shows_another_account(
    ui_client: TestClient, container: Container, other_account: dict[str, Any]
) -> None:
    _contact(container, other_account, "secret@other.example")
    assert "secret@other.example" not in ui_client.get("/ui/contacts", params={"q": "secret"}).text


def test_contact_page_shows_fields_and_timeline(
    ui_client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    cid = _contact(container, account, "ada@example.com", first_name="Ada", fields={"plan": "pro <b>"})
    actor = Actor(account_id=account["account_id"], source="api", credential_id=None)
    with container.transaction() as session:
        ConsentService(session, actor).set_status("ada@example.com", "opted_in", reason="signed up at the fair")
    page = ui_client.get(f"/ui/contacts/{cid}")
    assert page.status_code == 200
    assert "Ada" in page.text and "pro &lt;b&gt;" in page.text  # autoescaped
    assert "signed up at the fair" in page.text and "source <strong>api</strong>" in page.text


def test_change_status_writes_the_ledger_with_the_ui_user(
    ui_client: TestClient, token: str, container: Container, account: dict[str, Any]
) -> None:
    cid = _contact(container, account, "ada@example.com")
    aid = _address_id(container, account, "ada@example.com")
    response = ui_client.post(
        f"/ui/addresses/{aid}/status",
        data={"csrf_token": token, "status": "opted_out", "reason": "asked by phone", "next": f"/ui/contacts/{cid}"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == f"/ui/contacts/{cid}"
    assert _status(container, account, "ada@example.com") == "opted_out"
    page = ui_client.get(f"/ui/contacts/{cid}").text
    assert "ada@example.com is now opted out." in page
    assert "asked by phone" in page and "source <strong>ui</strong>" in page and "user acme" in page


def test_forbidden_transition_is_shown_and_changes_nothing(
    ui_client: TestClient, token: str, container: Container, account: dict[str, Any]
) -> None:
    _contact(container, account, "ada@example.com")
    aid = _address_id(container, account, "ada@example.com")
    with container.transaction() as session:
        ConsentService(session, Actor(account_id=account["account_id"], source="api")).set_status(
            "ada@example.com", "opted_out"
        )
    response = ui_client.post(
        f"/ui/addresses/{aid}/status", data={"csrf_token": token, "status": "opted_in"}, follow_redirects=False
    )
    assert response.status_code == 409
    assert "Refused: ada@example.com cannot go from opted_out to opted_in" in response.text
    assert _status(container, account, "ada@example.com") == "opted_out"


def test_invalid_status_and_past_until_are_refused(
    ui_client: TestClient, token: str, container: Container, account: dict[str, Any]
) -> None:
    _contact(container, account, "ada@example.com")
    aid = _address_id(container, account, "ada@example.com")
    bad = ui_client.post(f"/ui/addresses/{aid}/status", data={"csrf_token": token, "status": "banana"})
    assert bad.status_code == 409 and "Refused: must be one of" in bad.text
    past = ui_client.post(
        f"/ui/addresses/{aid}/status", data={"csrf_token": token, "status": "opted_out", "until": "2001-01-01T00:00"}
    )
    assert past.status_code == 409 and "must be in the future" in past.text
    assert _status(container, account, "ada@example.com") == "unknown"


def test_status_change_without_csrf_is_refused(
    ui_client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    _contact(container, account, "ada@example.com")
    aid = _address_id(container, account, "ada@example.com")
    for data in ({"status": "opted_out"}, {"status": "opted_out", "csrf_token": "forged"}):
        response = ui_client.post(f"/ui/addresses/{aid}/status", data=data)
        assert response.status_code == 403 and "Form expired" in response.text
    assert _status(container, account, "ada@example.com") == "unknown"


def test_other_accounts_contacts_and_addresses_are_404(
    ui_client: TestClient, token: str, container: Container, other_account: dict[str, Any]
) -> None:
    cid = _contact(container, other_account, "theirs@example.com")
    aid = _address_id(container, other_account, "theirs@example.com")
    assert ui_client.get(f"/ui/contacts/{cid}").status_code == 404
    assert ui_client.get(f"/ui/addresses/{aid}").status_code == 404
    response = ui_client.post(f"/ui/addresses/{aid}/status", data={"csrf_token": token, "status": "opted_out"})
    assert response.status_code == 404
    assert _status(container, other_account, "theirs@example.com") == "unknown"
    assert ui_client.get("/ui/contacts/99999999").status_code == 404


def _upload(client: TestClient, token: str, body: bytes, name: str = "people.csv") -> Any:
    return client.post("/ui/import", data={"csrf_token": token}, files={"file": (name, body, "text/csv")})


def test_import_reports_counts_and_bad_rows_by_line(
    ui_client: TestClient, token: str, container: Container, account: dict[str, Any]
) -> None:
    _contact(container, account, "old@example.com", first_name="Old")
    body = (
        b"email,first_name,age,plan\n"
        b"ada@example.com,Ada,36,pro\n"
        b"not-an-email,Bad,1,x\n"
        b"old@example.com,Renamed,50,free\n"
        b"grace@example.com,Grace,abc,x\n"
    )
    response = _upload(ui_client, token, body)
    assert response.status_code == 200
    text = response.text
    assert re.search(r'id="n-imported">1<', text) and re.search(r'id="n-updated">1<', text)
    assert re.search(r'id="n-skipped">2<', text)
    assert '<td class="num">3</td>' in text and '<td class="num">5</td>' in text
    contacts = ui_client.get("/ui/contacts").text
    assert "ada@example.com" in contacts and "Renamed" in contacts
    assert _status(container, account, "ada@example.com") == "unknown"


def test_import_refuses_a_file_without_email_column_and_no_file(ui_client: TestClient, token: str) -> None:
    response = _upload(ui_client, token, b"name\nAda\n")
    assert response.status_code == 422 and "the header has no email column" in response.text
    response = ui_client.post("/ui/import", data={"csrf_token": token})
    assert response.status_code == 422 and "Choose a CSV file" in response.text
    assert "No contacts yet" in ui_client.get("/ui/contacts").text


def test_import_without_csrf_imports_nothing(ui_client: TestClient) -> None:
    response = ui_client.post("/ui/import", files={"file": ("a.csv", b"email\nada@example.com\n", "text/csv")})
    assert response.status_code == 403
    assert "No contacts yet" in ui_client.get("/ui/contacts").text
