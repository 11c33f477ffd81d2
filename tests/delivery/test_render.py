from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from herald.delivery import tokens
from herald.delivery.render import MessageSpec, compile_message, rewrite_links
from herald.security import TokenSigner

SIGNER = TokenSigner(b"k" * 32)
TOKEN = "a" * 32
HTML = (
    "<html><head><style>p { color: red }</style></head><body>"
    "<p>Hi ((first_name|there)), from ((sender_name)).</p>"
    '<a href="https://shop.example/a?x=1&amp;y=2">Shop</a> <a href="mailto:x@example.com">mail</a>'
    '<a href="https://shop.example/b">B</a> <a href="((unsubscribe_preferences))">Preferences</a>'
    "</body></html>"
)


def _spec(**kw: object) -> MessageSpec:
    base: dict[str, object] = {
        "subject": "News for ((first_name|you))",
        "from_email": "news@shop.example",
        "from_name": "Shop Ünited",
        "reply_to": "help@shop.example",
        "sender_address": "1 Main St",
        "html": HTML,
        "preheader": "Deals for ((first_name))",
    }
    base.update(kw)
    return MessageSpec(**base)  # type: ignore[arg-type]


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_full_message() -> None:
    compiled = compile_message(_spec(), base_url="http://h.test/", signer=SIGNER)
    assert compiled.links == ("https://shop.example/a?x=1&y=2", "https://shop.example/b")
    data = compiled.render(email="ann@example.org", token=TOKEN, values={"first_name": "Ann", "age": 3})
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    msg = _parse(data)
    assert msg["To"] == "ann@example.org"
    assert msg["Subject"] == "News for Ann"
    assert msg["From"] == "Shop Ünited <news@shop.example>"
    assert msg["Reply-To"] == "help@shop.example"
    assert msg["Message-ID"] == f"<{TOKEN}@shop.example>"
    unsubscribe = f"http://h.test/u/{tokens.make(SIGNER, tokens.UNSUBSCRIBE, TOKEN)}"
    assert msg["List-Unsubscribe"] == f"<{unsubscribe}>, <mailto:unsubscribe+{TOKEN}@shop.example?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = _parts(msg)
    assert "Hi Ann, from Shop Ünited." in text
    assert f"http://h.test/p/{tokens.make(SIGNER, tokens.PREFERENCES, TOKEN)}" in text
    assert 'style="color: red;"' in html
    click = f"http://h.test/t/c/{tokens.make(SIGNER, tokens.CLICK, TOKEN)}/"
    assert f'href="{click}1"' in html and f'href="{click}2"' in html
    assert "https://shop.example/a" not in html
    assert 'href="mailto:x@example.com"' in html
    assert f'src="http://h.test/t/o/{tokens.make(SIGNER, tokens.OPEN, TOKEN)}.gif"' in html
    assert f'href="http://h.test/p/{tokens.make(SIGNER, tokens.PREFERENCES, TOKEN)}"' in html
    assert "Deals for Ann</div>" in html


def test_fallbacks_and_deterministic_message_id() -> None:
    compiled = compile_message(_spec(), base_url="http://h.test", signer=SIGNER)
    one = _parse(compiled.render(email="bo@example.org", token=TOKEN))
    two = _parse(compiled.render(email="bo@example.org", token=TOKEN))
    assert one["Subject"] == "News for you"
    assert "Hi there, from" in _parts(one)[0]
    assert one["Message-ID"] == two["Message-ID"]


def test_header_injection_is_inert() -> None:
    compiled = compile_message(_spec(), base_url="http://h.test", signer=SIGNER)
    evil = "Ann\r\nBcc: victim@example.com\r\n\r\n<b>x</b>"
    data = compiled.render(email="ann@example.org", token=TOKEN, values={"first_name": evil})
    msg = _parse(data)
    assert msg["Bcc"] is None
    assert "\n" not in str(msg["Subject"]) and "Bcc:" in str(msg["Subject"])
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head
    html = _parts(msg)[1]
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_values_are_not_expanded_twice_and_recipient_is_checked() -> None:
    compiled = compile_message(_spec(), base_url="http://h.test", signer=SIGNER)
    msg = _parse(compiled.render(email="a@example.org", token=TOKEN, values={"first_name": "((email))"}))
    assert msg["Subject"] == "News for ((email))"
    for bad in ("a@example.org\r\nBcc: b@example.org", "Ann <a@example.org>", "ä@example.org"):
        with pytest.raises(ValueError):
            compiled.render(email=bad, token=TOKEN)


def test_non_ascii_subject_and_body_are_encoded() -> None:
    compiled = compile_message(_spec(subject="Grüße ((first_name))"), base_url="http://h.test", signer=SIGNER)
    data = compiled.render(email="a@example.org", token=TOKEN, values={"first_name": "Zoë"})
    assert data.isascii()
    assert b"Content-Transfer-Encoding: base64" in data
    msg = _parse(data)
    assert msg["Subject"] == "Grüße Zoë"
    assert "Hi Zoë" in _parts(msg)[0]


def test_line_ends_of_template_and_values_all_become_crlf() -> None:
    """The body is filled as bytes from pieces normalised apart: a bare CR or LF in a value is still CRLF."""
    html = "<html><body>\n<p>Hi ((first_name))\r</p>\n<p>((city|Town))</p></body></html>"
    compiled = compile_message(
        _spec(html=html, text="Hi ((first_name))\nfrom ((city))\r"), base_url="http://h.test", signer=SIGNER
    )
    data = compiled.render(email="a@example.org", token=TOKEN, values={"first_name": "Ann\nLee\rX", "city": "A\r\nB"})
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
    assert b"Content-Transfer-Encoding: 7bit" in data
    text, html_part = _parts(_parse(data))
    assert text.splitlines() == ["Hi Ann", "Lee", "X", "from A", "B"]
    assert "<p>Hi Ann\nLee\nX\n</p>" in html_part.replace("\r\n", "\n") and "<p>A\nB</p>" in html_part.replace(
        "\r\n", "\n"
    )


def test_a_line_over_998_octets_is_base64_and_a_guessed_boundary_is_inert() -> None:
    compiled = compile_message(_spec(text="((city))"), base_url="http://h.test", signer=SIGNER)
    boundary = compiled._boundary
    data = compiled.render(email="a@example.org", token=TOKEN, values={"city": "x" * 1200, "first_name": boundary})
    assert data.count(f"--{boundary}".encode()) == 3  # two parts and the end, none from the value
    assert b"Content-Transfer-Encoding: base64" in data and max(map(len, data.split(b"\r\n"))) <= 998
    text, html_part = _parts(_parse(data))
    assert text.strip() == "x" * 1200
    assert boundary not in html_part


def test_text_only_without_tracking_or_list_unsubscribe() -> None:
    spec = MessageSpec(
        subject="Confirm",
        from_email="news@shop.example",
        text="Click ((optin_confirm_url))",
        track=False,
        list_unsubscribe=False,
    )
    compiled = compile_message(spec, base_url="http://h.test", signer=SIGNER)
    msg = _parse(compiled.render(email="a@example.org", token=TOKEN, values={"optin_confirm_url": "http://h.test/c/x"}))
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().rstrip() == "Click http://h.test/c/x"
    assert msg["List-Unsubscribe"] is None


def test_links_with_merge_tags_are_not_tracked() -> None:
    html, links = rewrite_links('<a href="((optin_confirm_url))">c</a><a class="x" href=\'https://e.example/\'>e</a>')
    assert links == ("https://e.example/",)
    assert 'href="((optin_confirm_url))"' in html and "href='((herald__click_1))'" in html
