"""The newcomer's flow in a real browser (Debian's chromium via Playwright) against a real server and worker.

Sign in, import contacts from a CSV, write a send with a design, preview it, send it, watch it complete, read
its stats, unsubscribe from the received mail's link, and find the event on the contact's consent timeline.
A second test reads the sent mail in the maildir outbox. SQLite only, to keep the suite fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from herald.app import create_app
from herald.container import Container
from herald.sends.service import SendService
from tests.conftest import LiveServer
from tests.sends.factory import World, actor, send_in, world
from tests.ui.conftest import PASSWORD, set_password

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000


@pytest.fixture
def page(browser_page: Any) -> Any:
    """The shared browser page of tests/e2e/conftest.py (one Playwright instance for the whole session)."""
    return browser_page


def expect(locator: Any) -> Any:
    """Playwright's auto-waiting assertions (they never evaluate strings in the page, so the CSP stays on)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"campaign-{name}.png"
    page.mouse.wheel(0, -100_000)  # back to the top, so sticky panels sit where a person first sees them
    page.wait_for_timeout(100)
    page.screenshot(path=str(path), full_page=True)
    return path


def serve(container: Container, **settings: Any) -> LiveServer:
    """Herald with its worker under uvicorn on loopback, its links pointing at the server itself."""
    server = LiveServer(create_app(container, run_worker=True))
    container.settings = container.settings.model_copy(update={"base_url": server.url, **settings})
    return server


def sign_in(page: Any, base: str, account: dict[str, Any]) -> None:
    """Sign in through the form, as a person does."""
    page.goto(f"{base}/ui/login")
    page.fill("#f-user", str(account["user_id"]))
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/$"))


def setup_world(container: Container, account: dict[str, Any]) -> World:
    """What a newcomer's account has before the campaign: a sender and contact types (created by an admin)."""
    set_password(container, account)
    with container.transaction() as session:
        return world(session, account["account_id"])


def test_newcomer_imports_sends_watches_and_sees_the_unsubscribe(
    container: Container, account: dict[str, Any], smtp_sink: Any, page: Any
) -> None:
    w = setup_world(container, account)
    with serve(container, smtp_url=smtp_sink.url) as server:
        base = server.url
        sign_in(page, base, account)

        # Import contacts from a CSV file.
        page.goto(f"{base}/ui/import")
        csv = (
            "email,first_name,last_name,contact_type_id\n"
            f"ada@example.com,Ada,Lovelace,{w.type_id}\n"
            f"grace@example.com,Grace,Hopper,{w.type_id}\n"
        )
        page.set_input_files("#f-file", files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
        page.click("form[action='/ui/import'] button[type=submit]")
        page.wait_for_selector("#n-imported")
        assert page.inner_text("#n-imported") == "2"
        shot(page, "1-import")

        # Write the send: a built-in design, the contact type as audience; the count and the preview follow.
        page.goto(f"{base}/ui/sends/new")
        page.fill("#f-single_send_name", "Spring newsletter")
        page.fill("#f-subject", "Hello ")
        page.click("#f-subject")
        page.click("[data-merge-tag=first_name]")
        assert page.input_value("#f-subject") == "Hello ((first_name))"
        page.fill("#f-preheader", "Our spring news")
        page.select_option("#f-template_id", label="Newsletter")
        page.check(f"input[name=recipient_id][value=contacts_{w.type_id}]")
        page.wait_for_selector("#audience-count [data-eligible='2']")
        expect(page.locator("#preview.htmx-request")).to_have_count(0)
        frame = page.frame_locator("#preview iframe.mail-frame")
        frame.locator("body").get_by_text("Hello Ada", exact=False).first.wait_for()
        assert "Hello Ada" in page.inner_text("#preview .preview-subject")
        shot(page, "2-editor-preview")

        page.check("input[name=when][value=now]")
        page.click("#send-form button[type=submit]")
        page.wait_for_url(re.compile(r".*/ui/sends/\d+$"))
        send_url = page.url

        # Live progress until completed (htmx polls, then reloads the page with the stats).
        expect(page.locator("[data-stat=delivered] .value")).to_have_text("2", timeout=TIMEOUT_MS)
        assert "completed" in page.inner_text(".page-head").lower()
        assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "100"
        assert "ada@example.com" in page.inner_text("table.deliveries")
        shot(page, "3-send-completed")

        # The mail as the sink received it: unsubscribe through its List-Unsubscribe URL, in the browser.
        smtp_sink.wait_for(2)
        [mail] = smtp_sink.to("ada@example.com")
        message = mail.message
        assert message["Subject"] == "Hello Ada"
        url = re.search(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))
        assert url and url.group(1).startswith(base)
        page.goto(url.group(1))
        page.get_by_role("button", name="Unsubscribe").click()
        page.get_by_text("unsubscribed", exact=False).first.wait_for()
        shot(page, "4-unsubscribed")

        # The ledger event on the contact's consent timeline, and the unsubscribe in the send's stats.
        page.goto(f"{base}/ui/contacts?q=ada%40example.com")
        page.get_by_role("link", name=re.compile("ada@example.com")).first.click()
        timeline = page.locator(".timeline")
        timeline.wait_for()
        text = timeline.inner_text().lower()
        assert "opted out" in text and "public" in text
        shot(page, "5-contact-timeline")
        page.goto(send_url)
        assert page.inner_text("[data-stat=unsubscribes] .value").strip() == "1"


def test_maildir_outbox_shows_the_sent_message(container: Container, account: dict[str, Any], page: Any) -> None:
    w = setup_world(container, account)
    from tests.sends.factory import add_contact

    with container.transaction() as session:
        contact = add_contact(session, account["account_id"], "ada@example.com", type_id=w.type_id)
        contact.first_name = "Ada"
        SendService(session, actor(account["account_id"])).create(
            send_in(w, schedule_type=0, unsubscribe_group_id=None)
        )
    outbox = Path(container.settings.smtp_url.split(":", 1)[1])
    with serve(container) as server:
        base = server.url
        sign_in(page, base, account)
        page.goto(f"{base}/ui/outbox")
        for _ in range(100):
            if page.locator("table.outbox tbody a").count() and "ada@example.com" in page.inner_text("table.outbox"):
                break
            page.wait_for_timeout(200)
            page.reload()
        assert "Hello Ada" in page.inner_text("table.outbox")
        assert str(outbox) in page.inner_text("main")
        shot(page, "6-outbox")
        page.get_by_role("link", name="Hello Ada").click()
        frame = page.frame_locator("iframe.mail-frame")
        frame.locator("body").get_by_text("Ada", exact=False).first.wait_for()
        assert page.get_attribute("iframe.mail-frame", "sandbox") == ""
        assert "List-Unsubscribe" in page.inner_text("table.headers")
        shot(page, "7-outbox-message")
