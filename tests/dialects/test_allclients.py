"""AllClients v2 form posts through the real ASGI app: every seed sample, every rule, every error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from herald.actor import Actor
from herald.consent.models import Address, ConsentEvent
from herald.consent.service import ConsentService
from herald.contacts.models import Contact
from herald.container import Container
from tests.conftest import auth

SET = "/api/2/SetOptInStatus.aspx"
GET = "/api/2/GetOptInStatus.aspx"
ADD = "/api/2/AddContact.aspx"


def _form(account: dict[str, Any], **fields: str) -> dict[str, str]:
    creds = account["allclients"]
    return {"accountid": creds["accountid"], "apikey": creds["apikey"], **fields}


def _known(container: Container, account: dict[str, Any], email: str, status: str | None = None) -> None:
    with container.transaction() as s:
        svc = ConsentService(s, Actor(account_id=account["account_id"], source="test"))
        svc.ensure(email)
        if status:
            svc.set_status(email, status)


def _status(container: Container, account: dict[str, Any], email: str) -> str | None:
    with container.transaction() as s:
        addr = ConsentService(s, Actor(account_id=account["account_id"], source="test")).find(email)
        return addr.status if addr else None


def _xml(details: str, tag: str = "details") -> str:
    if tag == "error":
        return f'<?xml version="1.0"?>\n<results>\n    <error>{details}</error>\n</results>\n'
    return (
        '<?xml version="1.0"?>\n<results>\n    <message>Success</message>\n'
        f"    <details>{details}</details>\n</results>\n"
    )


def test_seed_samples_opt_in_then_opt_out(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    _known(container, account, "test@domain.com")
    r = client.post(SET, data=_form(account, email="test@domain.com", status="1"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    assert r.text == _xml("Email Address (test@domain.com) is Now Opt In")
    r = client.post(SET, data=_form(account, email="test@domain.com", status="2"))
    assert r.text == _xml("Email Address (test@domain.com) is Now Opt Out")
    assert _status(container, account, "test@domain.com") == "opted_out"


@pytest.mark.parametrize(
    ("code", "word", "status"), [("3", "Bounced", "bounced"), ("4", "Spam Report", "spam_reported")]
)
def test_bounce_and_spam_report(
    client: TestClient, container: Container, account: dict[str, Any], code: str, word: str, status: str
) -> None:
    _known(container, account, "b@example.com", "opted_in")
    r = client.post(SET, data=_form(account, email="b@example.com", status=code))
    assert r.text == _xml(f"Email Address (b@example.com) is Now {word}")
    assert _status(container, account, "b@example.com") == status


def test_ledger_records_allclients_credential_and_ip(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    _known(container, account, "l@example.com")
    client.post(SET, data=_form(account, email="l@example.com", status="1"))
    events = client.get("/api/v1/addresses/l@example.com/events", headers=auth(account)).json()["items"]
    assert [(e["source"], e["from_status"], e["to_status"]) for e in events] == [("allclients", "unknown", "opted_in")]
    assert events[0]["credential"] is not None and events[0]["ip"]


def test_authentication_failed(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    _known(container, account, "a@example.com")
    bad = [
        {**_form(account), "apikey": "0" * 32},
        {**_form(account), "accountid": "abc"},
        {**_form(account), "accountid": other_account["allclients"]["accountid"]},
        {"apikey": account["allclients"]["apikey"]},
        {"accountid": account["allclients"]["accountid"]},
    ]
    for form in bad:
        r = client.post(SET, data={**form, "email": "a@example.com", "status": "1"})
        assert r.status_code == 200
        assert r.text == _xml("Authentication failed", "error")
    assert _status(container, account, "a@example.com") == "unknown"


def test_unknown_address_not_found_and_nothing_created(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    _known(container, other_account, "theirs@example.com")
    for email in ("nobody@example.com", "theirs@example.com", "not an email", ""):
        r = client.post(SET, data=_form(account, email=email, status="1"))
        assert r.text == _xml("Email Address Not Found", "error")
    with container.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Address).where(Address.account_id == 1)) == 0
    assert _status(container, other_account, "theirs@example.com") == "unknown"


@pytest.mark.parametrize(
    ("start", "code", "current"),
    [
        ("opted_out", "1", "Opt Out"),
        ("opted_in", "1", "Opt In"),
        ("bounced", "2", "Bounced"),
        ("spam_reported", "2", "Spam Report"),
        ("spam_reported", "3", "Spam Report"),
        ("opted_out", "3", "Opt Out"),
    ],
)
def test_rules_refuse_with_current_status_and_change_nothing(
    client: TestClient, container: Container, account: dict[str, Any], start: str, code: str, current: str
) -> None:
    _known(container, account, "r@example.com", start)
    r = client.post(SET, data=_form(account, email="r@example.com", status=code))
    assert r.text == _xml(f"Unable to Set Opt In Status (Not allowed for current status {current})", "error")
    assert _status(container, account, "r@example.com") == start


def test_spam_report_from_any_state_is_final(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    _known(container, account, "s@example.com", "opted_out")
    assert "is Now Spam Report" in client.post(SET, data=_form(account, email="s@example.com", status="4")).text
    for code in ("1", "2", "3"):
        r = client.post(SET, data=_form(account, email="s@example.com", status=code))
        assert "Not allowed for current status Spam Report" in r.text
    assert _status(container, account, "s@example.com") == "spam_reported"


def test_fields_trimmed_to_max_length(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    email = "a" * 63 + "@example.com"  # exactly 75 characters
    assert len(email) == 75
    _known(container, account, email)
    r = client.post(SET, data=_form(account, email="  " + email.upper() + "zzzz", status="12"))
    assert r.text == _xml(f"Email Address ({email}) is Now Opt In")


def test_invalid_status_value(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    _known(container, account, "v@example.com")
    for status in ("", "5", "x", "0"):
        r = client.post(SET, data=_form(account, email="v@example.com", status=status))
        assert r.text == _xml("Unable to Set Opt In Status (Invalid status value)", "error")
    assert _status(container, account, "v@example.com") == "unknown"


def test_json_mode_mirrors_elements(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    _known(container, account, "j@example.com")
    r = client.post(SET, data=_form(account, email="J@Example.com", status="1", response_type="json"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {"message": "Success", "details": "Email Address (j@example.com) is Now Opt In"}
    r = client.post(SET, data=_form(account, email="j@example.com", status="1", response_type="JSON"))
    assert r.json() == {"error": "Unable to Set Opt In Status (Not allowed for current status Opt In)"}
    r = client.post(SET, data={"response_type": "json", "accountid": "1", "apikey": "x"})
    assert r.json() == {"error": "Authentication failed"}


def test_multipart_form_is_accepted(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    _known(container, account, "m@example.com")
    files = {k: (None, v) for k, v in _form(account, email="m@example.com", status="2").items()}
    r = client.post(SET, files=files)
    assert r.text == _xml("Email Address (m@example.com) is Now Opt Out")


def test_oversized_or_malformed_body_is_an_allclients_error(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    _known(container, account, "big@example.com")
    container.settings.max_body_bytes = 200
    form = _form(account, email="big@example.com", status="2", padding="x" * 500)
    r = client.post(SET, data=form)
    assert r.status_code == 200 and r.text == _xml("Request Too Large", "error")
    r = client.post(
        SET + "?response_type=json",
        content=b"--zz\r\nbroken",
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 200 and "error" in r.json()
    assert _status(container, account, "big@example.com") == "unknown"


def test_get_opt_in_status(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    _known(container, account, "g@example.com")
    r = client.post(GET, data=_form(account, email="g@example.com"))
    assert r.text == (
        '<?xml version="1.0"?>\n<results>\n    <message>Success</message>\n    <details>\n'
        "        <emailaddress>g@example.com</emailaddress>\n        <optinstatus>Unknown</optinstatus>\n"
        "    </details>\n</results>\n"
    )
    client.post(SET, data=_form(account, email="g@example.com", status="1"))
    r = client.post(GET, data=_form(account, email="g@example.com", response_type="json"))
    assert r.json() == {"message": "Success", "details": {"emailaddress": "g@example.com", "optinstatus": "Opt In"}}
    r = client.post(GET, data=_form(other_account, email="g@example.com"))
    assert r.text == _xml("Email Address Not Found", "error")
    r = client.post(GET, data={**_form(account, email="g@example.com"), "apikey": "nope"})
    assert r.text == _xml("Authentication failed", "error")


def test_add_contact_makes_address_known_and_visible_natively(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    form = _form(account, email=" New@Example.com ", firstname="Ann", lastname="Lee", city="Oslo", phone1="555")
    r = client.post(ADD, data=form)
    assert r.status_code == 200
    body = r.text
    assert body.startswith('<?xml version="1.0"?>\n<results>\n    <message>Success</message>\n    <contactid>')
    with container.transaction() as s:
        contact = s.scalars(select(Contact)).one()
        assert (contact.email, contact.first_name, contact.last_name, contact.city) == (
            "new@example.com",
            "Ann",
            "Lee",
            "Oslo",
        )
        assert f"<contactid>{contact.id}</contactid>" in body
    # AddContact again answers the same contact; the address is now known to SetOptInStatus.
    again = client.post(ADD, data={**form, "response_type": "json"}).json()
    assert again == {"message": "Success", "contactid": contact.id}
    assert "is Now Opt In" in client.post(SET, data=_form(account, email="new@example.com", status="1")).text
    native = client.get("/api/v1/addresses/new@example.com", headers=auth(account)).json()
    assert native["status"] == "opted_in"


def test_add_contact_refuses_bad_email_and_creates_nothing(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    r = client.post(ADD, data=_form(account, email="nope", firstname="A", lastname="B", response_type="json"))
    assert r.json() == {"error": "Invalid Email Address"}
    r = client.post(ADD, data={**_form(account, email="x@example.com"), "apikey": "bad"})
    assert r.text == _xml("Authentication failed", "error")
    with container.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 0
        assert s.scalar(select(func.count()).select_from(Address)) == 0
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def test_native_change_visible_through_allclients(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    r = client.put("/api/v1/addresses/n@example.com/status", json={"status": "opted_out"}, headers=auth(account))
    assert r.status_code == 200
    r = client.post(GET, data=_form(account, email="n@example.com", response_type="json"))
    assert json.loads(r.text)["details"]["optinstatus"] == "Opt Out"
