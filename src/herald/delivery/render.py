"""Compile a message once per send, then fill per-recipient bytes.

Compiling does the expensive work once: CSS inlining (css-inline), click-link rewriting (the links are
returned, by position, for the send's SendLink rows), the open pixel, the preheader, the text part derived
from the HTML, the static headers (From, Reply-To, MIME structure). Filling a recipient is string joins, two
body encodings and (when configured) a DKIM signature: tens of microseconds, not the ≈ 4 ms of building an
`EmailMessage`.

Per recipient: To, a deterministic Message-ID `<{delivery token}@{domain}>`, List-Unsubscribe (URL and
mailto) with List-Unsubscribe-Post (RFC 8058), merge values (HTML-escaped in the HTML part, control
characters removed in headers, never expanded twice), signed link tokens (herald.delivery.tokens).
"""

from __future__ import annotations

import html as htmlmod
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import css_inline

from herald.delivery import merge, mime, tokens
from herald.delivery.dkim import DkimSigner
from herald.delivery.text import html_to_text
from herald.security import TokenSigner

# Internal tags: user texts cannot contain them (validate_tags refuses unknown tags at save time), and a
# value is never expanded again, so a recipient cannot forge one either.
_OPEN, _PREHEADER, _CLICK = "herald__open", "herald__preheader", "herald__click_"
_LINK_RE = re.compile(r"(<a\b[^>]*?\bhref\s*=\s*)([\"'])(.*?)\2", re.IGNORECASE | re.DOTALL)
_BODY_OPEN_RE = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE_RE = re.compile(r"</body\s*>", re.IGNORECASE)
_PREHEADER_HTML = (
    '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;'
    f'overflow:hidden;mso-hide:all">(({_PREHEADER}))</div>'
)
_PIXEL_HTML = f'<img src="(({_OPEN}))" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">'
_NEEDS_ESCAPE = re.compile(r"[<>&\"']")
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


@dataclass(frozen=True)
class MessageSpec:
    """What a message says, independent of its recipients (a send, or an opt-in email)."""

    subject: str
    from_email: str
    html: str = ""
    text: str = ""
    preheader: str = ""
    from_name: str | None = None
    reply_to: str | None = None
    sender_address: str | None = None
    track: bool = True  # rewrite links for click tracking and add the open pixel
    list_unsubscribe: bool = True  # List-Unsubscribe headers and the /u, /p links
    extra_headers: tuple[tuple[str, str], ...] = ()


def message_id(token: str, domain: str) -> str:
    """The Message-ID of a delivery: derived from its token, so a retry or a re-send carries the same one."""
    return f"<{token}@{domain}>"


def inline_css(html: str) -> str:
    """Inline <style> rules into style attributes (media queries stay in <style>); unparseable HTML as is."""
    try:
        return str(_INLINER.inline(html))
    except (css_inline.InlineError, ValueError):
        return html


def rewrite_links(html: str) -> tuple[str, tuple[str, ...]]:
    """Replace every http(s) link by a click slot; the original URLs by position (from 1).

    Links carrying a merge tag (such as the preferences or opt-in confirmation link) are personal and left
    alone, so a confirmation URL is never rewritten.
    """
    links: list[str] = []

    def replace(m: re.Match[str]) -> str:
        url = htmlmod.unescape(m.group(3)).strip()
        if "((" in url or not url.lower().startswith(("http://", "https://")):
            return m.group(0)
        links.append(url)
        return f"{m.group(1)}{m.group(2)}(({_CLICK}{len(links)})){m.group(2)}"

    return _LINK_RE.sub(replace, html), tuple(links)


def _insert_html(html: str, *, preheader: bool, pixel: bool) -> str:
    if preheader:
        m = _BODY_OPEN_RE.search(html)
        html = html[: m.end()] + _PREHEADER_HTML + html[m.end() :] if m else _PREHEADER_HTML + html
    if pixel:
        ends = list(_BODY_CLOSE_RE.finditer(html))
        html = html[: ends[-1].start()] + _PIXEL_HTML + html[ends[-1].start() :] if ends else html + _PIXEL_HTML
    return html


def _header_safe(value: str) -> str:
    return mime.clean_header_text(value)


@dataclass
class CompiledMessage:
    """A send's message, ready to be filled for one recipient at a time."""

    spec: MessageSpec
    base_url: str
    domain: str
    signer: TokenSigner
    links: tuple[str, ...]
    dkim: DkimSigner | None = None
    _subject: merge.Compiled = field(init=False)
    _preheader: merge.Compiled = field(init=False)
    _html: merge.CompiledBody | None = field(init=False)
    _text: merge.CompiledBody = field(init=False)
    _static_headers: str = field(init=False)
    _boundary: str = field(init=False)
    _boundary_bytes: bytes = field(init=False)

    def message_id(self, token: str) -> str:
        """This recipient's Message-ID."""
        return message_id(token, self.domain)

    def render(self, *, email: str, token: str, values: Mapping[str, str | None] | None = None) -> bytes:
        """The finished message bytes for one recipient (CRLF, DKIM-signed when configured)."""
        if not mime.is_plain_address(email):
            raise ValueError(f"cannot address {email!r} without SMTPUTF8")
        spec, base = self.spec, self.base_url
        merged: dict[str, str] = {k: str(v) for k, v in (values or {}).items() if v is not None and v != ""}
        merged["email"] = email
        if "full_name" not in merged:
            merged["full_name"] = " ".join(p for p in (merged.get("first_name"), merged.get("last_name")) if p)
        merged["sender_name"] = spec.from_name or ""
        merged["sender_address"] = spec.sender_address or ""
        signer = self.signer
        if spec.list_unsubscribe:
            unsubscribe_url = f"{base}/u/{tokens.make(signer, tokens.UNSUBSCRIBE, token)}"
            merged["unsubscribe_preferences"] = f"{base}/p/{tokens.make(signer, tokens.PREFERENCES, token)}"

        lines = [mime.date_header(), self._static_headers, f"To: {email}\r\n"]
        lines.append(mime.header_line("Subject", self._subject.fill(merged, _header_safe)))
        lines.append(f"Message-ID: {self.message_id(token)}\r\n")
        if spec.list_unsubscribe:
            mailto = f"mailto:unsubscribe+{token}@{self.domain}?subject=unsubscribe"
            lines.append(f"List-Unsubscribe: <{unsubscribe_url}>,\r\n <{mailto}>\r\n")
            lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")

        text_values = {n: merge.body_value(v) for n in self._text.names if (v := merged.get(n))}
        text_body, text_cte = mime.encode_crlf_body(self._guard(self._text.fill(text_values)))
        if self._html is None:
            lines.append('MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\n')
            lines.append(f"Content-Transfer-Encoding: {text_cte}\r\n\r\n")
            message = "".join(lines).encode() + text_body + b"\r\n"
        else:
            # HTML values are escaped (the internal URLs too, in case the base URL carries an `&`).
            html_values = {n: merge.body_value(_escape_value(v)) for n in self._html.names if (v := merged.get(n))}
            if spec.preheader:
                html_values[_PREHEADER] = merge.body_value(_escape_value(self._preheader.fill(merged)))
            if spec.track:
                html_values[_OPEN] = merge.body_value(
                    _escape_value(f"{base}/t/o/{tokens.make(signer, tokens.OPEN, token)}.gif")
                )
                # One value for every click slot: compile_body moved each link's number into the literal after it.
                html_values[_CLICK] = merge.body_value(
                    _escape_value(f"{base}/t/c/{tokens.make(signer, tokens.CLICK, token)}/")
                )
            html_body, html_cte = mime.encode_crlf_body(self._guard(self._html.fill(html_values)))
            b = self._boundary
            lines.append(f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{b}"\r\n\r\n')
            message = b"".join(
                (
                    "".join(lines).encode(),
                    f"--{b}\r\n".encode(),
                    mime.part_header("text/plain", text_cte),
                    text_body,
                    f"\r\n--{b}\r\n".encode(),
                    mime.part_header("text/html", html_cte),
                    html_body,
                    f"\r\n--{b}--\r\n".encode(),
                )
            )
        return self.dkim.sign(message) if self.dkim else message

    def _guard(self, body: bytes) -> bytes:
        # The boundary is random per compile, so a value cannot know it; this keeps even a lucky guess inert.
        boundary = self._boundary_bytes
        return body.replace(boundary, b"=_") if boundary in body else body


def _escape_value(value: str) -> str:
    # Internal slot values are our own URLs (nothing to escape); merge values are the recipient's data.
    return htmlmod.escape(value) if _NEEDS_ESCAPE.search(value) else value


def compile_message(
    spec: MessageSpec,
    *,
    base_url: str,
    signer: TokenSigner,
    domain: str | None = None,
    dkim: DkimSigner | None = None,
) -> CompiledMessage:
    """Do once per send everything that does not depend on the recipient."""
    source_html = spec.html.strip()
    html_template: str | None = None
    links: tuple[str, ...] = ()
    if source_html:
        html_template = inline_css(source_html)
        if spec.track:
            html_template, links = rewrite_links(html_template)
        html_template = _insert_html(html_template, preheader=bool(spec.preheader), pixel=spec.track)
    text_source = spec.text if spec.text.strip() else (html_to_text(source_html) if source_html else "")
    msg = CompiledMessage(
        spec=spec,
        base_url=base_url.rstrip("/"),
        domain=domain or spec.from_email.rpartition("@")[2] or "localhost",
        signer=signer,
        links=links,
        dkim=dkim,
    )
    msg._subject = merge.compile_text(spec.subject)
    msg._preheader = merge.compile_text(spec.preheader)
    msg._html = merge.compile_body(html_template, numbered=_CLICK) if html_template is not None else None
    msg._text = merge.compile_body(text_source)
    msg._boundary = mime.new_boundary()
    msg._boundary_bytes = msg._boundary.encode()
    static = [f"From: {mime.address_header(spec.from_name, spec.from_email)}\r\n"]
    if spec.reply_to:
        static.append(f"Reply-To: {mime.address_header(None, spec.reply_to)}\r\n")
    for name, value in spec.extra_headers:
        static.append(mime.header_line(name, value))
    msg._static_headers = "".join(static)
    return msg
