"""Branding of public pages: per account, and never a way to inject markup, styles or script."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from herald.accounts.models import Account
from herald.container import Container
from herald.delivery import tokens
from herald.public import pages
from tests.public.factories import mail, make_account_row


def test_branding_defaults_to_account_name() -> None:
    brand = pages.branding(Account(name="Acme", branding={}))
    assert brand["name"] == "Acme" and brand["color"] == pages.DEFAULT_COLOR and brand["logo_url"] is None


def test_hostile_branding_is_neutralised() -> None:
    brand = pages.branding(
        Account(
            name="x",
            branding={
                "color": "red;} body{display:none",
                "logo_url": "javascript:alert(1)",
                "name": "<script>alert(1)</script>",
                "footer": "<b>hi</b>",
            },
        )
    )
    assert brand["color"] == pages.DEFAULT_COLOR and brand["logo_url"] is None
    html = pages.render("not_found.html", account=Account(name="x", branding=brand), title="t").body.decode()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>hi</b>" not in html


def test_button_text_keeps_contrast_on_light_and_dark_brands() -> None:
    assert pages.branding(Account(name="a", branding={"color": "#ffee00"}))["on_color"] == "#111111"
    assert pages.branding(Account(name="a", branding={"color": "#003366"}))["on_color"] == "#ffffff"


def test_page_is_branded_accessible_and_locked_down(client: TestClient, container: Container) -> None:
    account_id = make_account_row(
        container,
        branding={
            "name": "Acme News",
            "color": "#0a7d32",
            "logo_url": "https://cdn.acme.test/logo.png",
            "footer": "Acme",
        },
    )
    m = mail(container, account_id)
    r = client.get(f"/p/{m.url(tokens.PREFERENCES)}")
    html = r.text
    assert '<html lang="en">' in html and 'name="viewport"' in html
    assert '<img class="logo" src="https://cdn.acme.test/logo.png" alt="Acme News">' in html
    assert "--brand: #0a7d32" in html
    # Every form control has a label.
    for control_id in re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html):
        assert f'for="{control_id}"' in html, control_id
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<style nonce="{nonce.group(1)}">' in html
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    css = client.get(pages.STYLESHEET_URL)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
