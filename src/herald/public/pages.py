"""Rendering public pages: one Jinja2 environment, per-account branding, and the headers every page carries."""

from __future__ import annotations

import re
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from herald.accounts.models import Account

STATIC_DIR = Path(__file__).parent / "static"
STYLESHEET_URL = "/public/static/public.css"
DEFAULT_COLOR = "#2557d6"
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

# The URL carries the credential: never leak it in a Referer, never let another site frame our buttons,
# never let a browser, proxy or search engine keep the page.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}
# No script at all; the only inline style is the brand colour block, allowed by a per-response nonce.
_CSP = (
    "default-src 'none'; style-src 'self' 'nonce-{nonce}'; img-src https: http: data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@cache
def environment() -> Environment:
    """The templates of public pages, HTML-escaped by default."""
    return Environment(
        loader=PackageLoader("herald.public", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _text_on(color: str) -> str:
    """Black or white, whichever reads better on `color` (WCAG relative luminance)."""
    hexes = color[1:]
    if len(hexes) == 3:
        hexes = "".join(c * 2 for c in hexes)

    def channel(i: int) -> float:
        c = int(hexes[i : i + 2], 16) / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    # Contrast with white is (1.05)/(L+0.05), with black (L+0.05)/0.05: pick the larger.
    return "#ffffff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 else "#111111"


def branding(account: Account | None) -> dict[str, Any]:
    """The account's branding made safe for a page: a hex colour, an http(s) logo, plain-text name and footer."""
    raw = (account.branding if account is not None else None) or {}
    color = str(raw.get("color") or "")
    color = color if _HEX_COLOR.match(color) else DEFAULT_COLOR
    logo = str(raw.get("logo_url") or "")
    name = str(raw.get("name") or (account.name if account is not None else "") or "Herald")
    return {
        "name": name[:200],
        "logo_url": logo if logo.lower().startswith(("https://", "http://")) else None,
        "color": color,
        "on_color": _text_on(color),
        "footer": str(raw.get("footer") or "")[:1000] or None,
    }


def render(template: str, *, account: Account | None = None, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A public page with the account's branding and the public-page security headers."""
    nonce = secrets.token_urlsafe(16)
    html = (
        environment()
        .get_template(template)
        .render(brand=branding(account), stylesheet=STYLESHEET_URL, nonce=nonce, **context)
    )
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": _CSP.format(nonce=nonce)}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def not_found(*, account: Account | None = None) -> HTMLResponse:
    """The friendly page for a broken, tampered or expired link."""
    return render("not_found.html", account=account, status_code=404, title="Link not found")
