"""Building one opt-in email: the rule's message (or the built-in one) with its direct confirmation link.

The confirmation link is a plain `{base}/c/{token}` URL put in through `((optin_confirm_url))`, or appended
to the HTML and text parts when the message has no such tag; it is never a click-tracking redirect.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlparse

from herald.contacts.models import CONTACT_FIELDS
from herald.security import TokenSigner

CONFIRM_PURPOSE = "optin.confirm"
_TAG = re.compile(r"\(\(\s*([a-zA-Z0-9_]+)\s*\)\)")

DEFAULT_SUBJECT = "Please confirm your subscription to {list}"
DEFAULT_TEXT = (
    "Hello,\n\nplease confirm that you want to receive emails from {brand} ({list}) by opening this link:\n\n"
    "((optin_confirm_url))\n\nIf you did not ask for this, ignore this email and nothing will happen.\n"
)
DEFAULT_HTML = (
    '<!doctype html><html><body style="font-family:sans-serif">'
    "<p>Hello,</p><p>please confirm that you want to receive emails from {brand} ({list}).</p>"
    '<p><a href="((optin_confirm_url))" style="display:inline-block;padding:10px 18px;background:#2563eb;'
    'color:#fff;text-decoration:none;border-radius:4px">Confirm my subscription</a></p>'
    "<p>If you did not ask for this, ignore this email and nothing will happen.</p></body></html>"
)


@dataclass(frozen=True)
class OptinContent:
    """What the email says before merging: the rule's message or the built-in one."""

    subject: str
    html: str
    text: str


def confirm_token(signer: TokenSigner, record_id: int) -> str:
    """The signed token of one opt-in record's confirmation link."""
    return signer.sign(CONFIRM_PURPOSE, {"r": record_id})


def read_confirm_token(signer: TokenSigner, token: str, *, max_age: int) -> int:
    """The record id inside a confirmation token; ValueError when tampered, foreign or expired."""
    payload = signer.unsign(CONFIRM_PURPOSE, token, max_age=max_age)
    if not isinstance(payload, dict) or not isinstance(payload.get("r"), int):
        raise ValueError("invalid token")
    return int(payload["r"])


def default_content(list_name: str, brand: str) -> OptinContent:
    """The built-in confirmation message, used when no rule applies."""
    return OptinContent(
        subject=DEFAULT_SUBJECT.format(list=list_name),
        html=DEFAULT_HTML.format(list=html.escape(list_name), brand=html.escape(brand)),
        text=DEFAULT_TEXT.format(list=list_name, brand=brand),
    )


def merge(template: str, values: dict[str, str], *, escape: bool) -> str:
    """Replace `((tag))` merge tags; unknown tags become empty, values are HTML-escaped in HTML."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        value = values.get(name, "")
        if name == "optin_confirm_url":
            return html.escape(value, quote=True) if escape else value
        return html.escape(value) if escape else value

    return _TAG.sub(one, template)


def has_confirm_tag(template: str) -> bool:
    """Does a message place the confirmation link itself?"""
    return any(m.group(1).lower() == "optin_confirm_url" for m in _TAG.finditer(template))


def _append_html(body: str, url: str) -> str:
    link = f'<p><a href="{html.escape(url, quote=True)}">Confirm your subscription</a><br>{html.escape(url)}</p>'
    index = body.lower().rfind("</body>")
    return body[:index] + link + body[index:] if index >= 0 else body + link


def merge_values(contact: Any, email: str, list_name: str, confirm_url: str) -> dict[str, str]:
    """Merge values for one recipient: contact fields, email, list name and the confirmation URL."""
    values = {"email": email, "list_name": list_name, "optin_confirm_url": confirm_url}
    if contact is not None:
        for field in CONTACT_FIELDS:
            raw = getattr(contact, field, None)
            values[field] = "" if raw is None else str(raw)
    first, last = values.get("first_name", ""), values.get("last_name", "")
    values["full_name"] = " ".join(p for p in (first, last) if p)
    return values


def build_email(
    content: OptinContent,
    *,
    values: dict[str, str],
    from_email: str,
    from_name: str | None,
    reply_to: str | None,
    to_email: str,
) -> EmailMessage:
    """The finished opt-in email: merged subject and parts, each carrying the direct confirmation link."""
    url = values["optin_confirm_url"]
    subject = merge(content.subject, values, escape=False).replace("\r", " ").replace("\n", " ")
    text = merge(content.text, values, escape=False) if content.text else ""
    if not has_confirm_tag(content.text):
        text = (text.rstrip() + "\n\n" if text.strip() else "") + f"Confirm your subscription: {url}\n"
    body_html = merge(content.html, values, escape=True) if content.html.strip() else ""
    if body_html and not has_confirm_tag(content.html):
        body_html = _append_html(body_html, url)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = HeaderAddress(display_name=from_name or "", addr_spec=from_email)
    msg["To"] = to_email
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=from_email.rsplit("@", 1)[-1])
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    if body_html:
        msg.add_alternative(body_html, subtype="html")
    return msg


def fallback_from(base_url: str) -> str:
    """The From address when a message names no sender: no-reply at the public host name."""
    host = urlparse(base_url).hostname or "localhost"
    if not re.search(r"[a-z]", host) or "." not in host:
        host = "localhost.localdomain"
    return f"no-reply@{host}"
