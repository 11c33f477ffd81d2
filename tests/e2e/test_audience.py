"""In a real browser: sign in, import contacts from a CSV, find one, read its timeline, change its status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from herald.container import Container
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot
from tests.ui.conftest import PASSWORD, set_password

CSV = (
    "email,first_name,last_name,country\n"
    "ada@example.com,Ada,Lovelace,GB\n"
    "not-an-email,Broken,Row,XX\n"
    "grace@example.com,Grace,Hopper,US\n"
)


def test_import_find_timeline_and_refused_transition(
    browser_page: Any, live_server: LiveServer, container: Container, account: dict[str, Any], tmp_path: Path
) -> None:
    page = browser_page
    set_password(container, account)
    base = live_server.url

    page.goto(f"{base}/ui/contacts")
    assert page.url.startswith(f"{base}/ui/login")
    page.fill("#f-user", str(account["user_id"]))
    page.fill("#f-password", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".flash-error").inner_text() == "Wrong user or password."
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/ui/contacts")
    screenshot(page, "audience-01-contacts-empty")

    csv_file = tmp_path / "people.csv"
    csv_file.write_text(CSV)
    page.click("nav >> text=Import CSV")
    page.set_input_files("#f-file", str(csv_file))
    page.click("form[action='/ui/import'] button[type=submit]")
    assert page.locator("#n-imported").inner_text() == "2"
    assert page.locator("#n-skipped").inner_text() == "1"
    assert "3" in page.locator("table").inner_text()  # the bad row's line number
    screenshot(page, "audience-02-import-result")

    page.click("text=See contacts")
    page.fill("#f-q", "lovelace")
    page.click("form[role=search] button[type=submit]")
    rows = page.locator("tbody tr")
    assert rows.count() == 1
    page.click("text=ada@example.com")
    assert page.locator("h1").inner_text() == "ada@example.com"

    page.select_option("#f-status", "opted_out")
    page.fill("#f-reason", "asked by phone")
    page.click("#consent button[type=submit]")
    assert "ada@example.com is now opted out." in page.locator(".flashes").inner_text()
    timeline = page.locator(".timeline").inner_text()
    assert "asked by phone" in timeline and "source ui" in timeline
    screenshot(page, "audience-03-contact-opted-out")

    page.select_option("#f-status", "opted_in")
    page.click("#consent button[type=submit]")
    refusal = page.locator("#refusal").inner_text()
    assert "Refused: ada@example.com cannot go from opted_out to opted_in" in refusal
    assert "opted out" in page.locator("#consent").inner_text()
    screenshot(page, "audience-04-refused")

    page.goto(f"{base}/ui/")
    page.wait_for_selector("canvas[data-drawn]")
    screenshot(page, "audience-05-dashboard")

    page.goto(f"{base}/ui/segments")
    page.select_option(".rule-row [name=rule_field]", "country")
    page.fill(".rule-row [name=rule_value]", "US")
    expect(page.locator("#segment-count .count-live")).to_have_text("1")
    screenshot(page, "audience-06-segment-builder")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/ui/contacts")
    screenshot(page, "audience-07-mobile")
