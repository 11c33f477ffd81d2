"""Hostile merge values and forged public links: CR/LF never makes a header, `((` in a value is never expanded,
HTML in a value is escaped in the HTML part; click tracking redirects only to the send's recorded URLs; every
public route refuses a tampered, foreign-key or wrong-purpose token and changes nothing."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from functools import cache
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.consent.privacy_links import link_token
from herald.container import Container
from herald.delivery import tokens
from herald.delivery.render import MessageSpec, compile_message
from herald.optin.render import confirm_token
from herald.security import TokenSigner
from tests.public.factories import mail, make_account_row
from tests.security import wire

SIGNER = TokenSigner(b"k" * 32)
SPEC = MessageSpec(
    subject="Hello ((first_name))",
    from_email="news@acme.test",
    from_name="Acme",
    html='<html><body><p>Hi ((first_name)) ((last_name))</p><a href="https://acme.test/offer">Offer</a></body></html>',
    text="Hi ((first_name)) ((last_name))",
    preheader="For ((first_name))",
)
HEADERS = {
    "Date", "From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version",
    "Content-Type",
}  # fmt: skip
HOSTILE_VALUES = [
    "Eve\r\nBcc: victim@evil.test",
    "Eve\nX-Injected: 1\n\n<body>",
    "Eve\rSubject: spoofed",
    "((email)) ((unsubscribe_preferences)) ((herald__open)) ((herald__click_1))",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    '"><a href="https://evil.test">',
    "=?utf-8?b?QmNjOiB2aWN0aW1AZXZpbC50ZXN0?=",
    "\u2028\u2029\x00\x0b\x0c",
]


def _render(first: str, last: str) -> EmailMessage:
    compiled = compile_message(SPEC, base_url="http://herald.test", signer=SIGNER)
    raw = compiled.render(email="ann@example.com", token="abc123", values={"first_name": first, "last_name": last})
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@cache
def _tags_without_values() -> int:
    body = _render("", "").get_body(("html",))
    assert body is not None
    return str(body.get_content()).count("<")


def _check(message: EmailMessage, first: str, last: str) -> None:
    assert set(message.keys()) == HEADERS, message.keys()
    assert len(message.get_all("To") or []) == 1 and message["To"] == "ann@example.com"
    assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html, text = html_part.get_content(), text_part.get_content()
    # Values are never expanded again: the recipient's own `((…))` stays literal text.
    assert "ann@example.com" not in text and "ann@example.com" not in html
    assert "http://herald.test/p/" not in text
    # HTML in a value is text in the HTML part: values add no `<` to it (a lone "<" is in every tag, so the
    # count is compared with the same message rendered with empty values).
    assert html.count("<") == _tags_without_values()
    assert "<script>" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert 'href="https://evil.test"' not in html


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_merge_values_inject_no_header_tag_or_markup(value: str) -> None:
    message = _render(value, value)
    _check(message, value, value)
    html_part = message.get_body(("html",))
    assert html_part is not None
    if value.startswith("<script>"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_part.get_content()
    if value.startswith("(("):
        assert "((email))" in html_part.get_content()


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    first=st.text(alphabet=st.sampled_from("\r\n:<>&\"'()=?/ aB\x00\t;@"), max_size=40),
    last=st.text(max_size=30),
)
def test_any_merge_value_keeps_the_message_structure(first: str, last: str) -> None:
    _check(_render(first, last), first, last)


# -- public links ---------------------------------------------------------------------------------
@pytest.fixture
def mailed(container: Container) -> Any:
    """One delivery with two recorded links."""
    account_id = make_account_row(container)
    return mail(container, account_id, links=("https://acme.test/a", "https://acme.test/b"))


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(position=st.text(max_size=12), suffix=st.sampled_from(["", "?url=https://evil.test", "/https://evil.test"]))
def test_click_redirects_only_to_urls_recorded_for_the_send(
    client: TestClient, mailed: Any, position: str, suffix: str
) -> None:
    r = client.get(f"/t/c/{mailed.url(tokens.CLICK)}/{quote(position, safe='')}{suffix}", follow_redirects=False)
    assert r.status_code in (302, 404, 405)
    if r.status_code == 302:
        assert r.headers["location"] in ("https://acme.test/a", "https://acme.test/b")
    else:
        assert "location" not in r.headers


def _tampered(token: str) -> list[str]:
    payload, _, mac = token.rpartition(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    return [f"{payload}.{flipped}", payload, f"{payload}x.{mac}", token[:-3], "x" * len(token), ""]


def test_every_public_route_refuses_tampered_foreign_and_wrong_purpose_tokens(
    client: TestClient, container: Container, mailed: Any
) -> None:
    foreign = TokenSigner(b"f" * 32)
    forged: dict[str, list[str]] = {}
    for purpose in (tokens.UNSUBSCRIBE, tokens.PREFERENCES, tokens.OPEN, tokens.CLICK):
        good = mailed.url(purpose)
        other_purpose = [mailed.url(p) for p in (tokens.UNSUBSCRIBE, tokens.PREFERENCES) if p != purpose]
        forged[purpose] = [*_tampered(good), tokens.make(foreign, purpose, mailed.token), *other_purpose]
    confirm = [*_tampered(confirm_token(container.signer, 1)), confirm_token(foreign, 1)]
    privacy = {
        action: [*_tampered(link_token(container.signer, 1, action)), link_token(foreign, 1, action)]
        for action in ("export", "erase")
    }
    calls: list[tuple[str, str]] = []
    for t in forged[tokens.UNSUBSCRIBE]:
        calls += [("GET", f"/u/{t}"), ("POST", f"/u/{t}")]
    for t in forged[tokens.PREFERENCES]:
        calls += [("GET", f"/p/{t}"), ("POST", f"/p/{t}"), ("POST", f"/p/{t}/export"), ("POST", f"/p/{t}/erase")]
    calls += [("GET", f"/t/c/{t}/0") for t in forged[tokens.CLICK]]
    calls += [("GET", f"/c/{t}") for t in confirm]
    calls += [("GET", f"/privacy/export/{t}") for t in privacy["export"]]
    calls += [(m, f"/privacy/erase/{t}") for t in privacy["erase"] for m in ("GET", "POST")]
    before, status = wire.row_counts(container), mailed.status()
    for method, path in calls:
        if path.endswith("/") or "//" in path:
            continue  # an empty token is another route (or none)
        r = client.request(method, path, data={"global": "opt_out"}, follow_redirects=False)
        assert 400 <= r.status_code < 500, (method, path, r.status_code)
        assert "location" not in r.headers
    # The open pixel always answers the GIF, and records nothing for a forged token.
    for t in forged[tokens.OPEN]:
        if t:
            r = client.get(f"/t/o/{t}.gif")
            assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert wire.row_counts(container) == before
    assert mailed.status() == status and mailed.events() == []
