"""The byte-level pieces of a message: safe header lines, addresses and body encodings (CRLF throughout).

Nothing here builds an `EmailMessage` per recipient (≈ 4 ms each): headers and parts are joined as bytes.
"""

from __future__ import annotations

import binascii
import re
import secrets
from email.header import Header
from email.utils import formataddr, formatdate

# Control characters (CR and LF above all) never reach a header: they are what header injection needs.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
# An address we put in To (and take as RCPT TO) as is: no whitespace, brackets, quotes or separators.
_PLAIN_ADDRESS = re.compile(r"^[^\s<>()\[\]\\,;:\"@]+@[A-Za-z0-9.-]+$")
# 998 octets is the hard line limit of RFC 5322; longer lines must be encoded.
MAX_LINE = 998


def clean_header_text(value: str) -> str:
    """A value made safe for one header: control characters (CR, LF …) become one space."""
    return _CONTROL.sub(" ", value).strip() if not value.isprintable() else value


def header_line(name: str, value: str) -> str:
    """`Name: value\\r\\n`, RFC 2047-encoded (and folded) when non-ASCII or too long."""
    value = clean_header_text(value)
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}\r\n"
    encoded = Header(value, "utf-8" if not value.isascii() else "us-ascii", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n"


def is_plain_address(email: str) -> bool:
    """True for an ASCII address that can go into To and RCPT TO unquoted (everything else is refused)."""
    return email.isascii() and bool(_PLAIN_ADDRESS.match(email))


def address_header(name: str | None, email: str) -> str:
    """`"Display Name" <email>` with the name quoted or RFC 2047-encoded as needed."""
    return formataddr((clean_header_text(name) if name else "", email), charset="utf-8")


def date_header() -> str:
    """The Date header line for now (RFC 5322, GMT)."""
    return f"Date: {formatdate(usegmt=True)}\r\n"


def new_boundary() -> str:
    """A MIME boundary nobody can guess before the send is compiled (so no value can contain it)."""
    return f"=_herald_{secrets.token_hex(12)}"


def encode_crlf_body(body: bytes) -> tuple[bytes, str]:
    """A body already UTF-8 with CRLF line ends, and its Content-Transfer-Encoding: 7bit when it may, else base64.

    The bytes come from a compiled message's fill (merge.CompiledBody), normalised and encoded piecewise,
    so nothing here passes over the whole body more than the encoding itself needs.
    """
    if body.isascii() and (len(body) <= MAX_LINE or max(map(len, body.split(b"\r\n"))) <= MAX_LINE):
        return body, "7bit"
    # base64 rather than quoted-printable: binascii's QP costs ≈ 100 µs for 6 KB, base64 ≈ 10 µs. Lines are
    # cut as bytes slices: copying 76 bytes is cheaper than making a memoryview slice (10 vs 23 µs per 8 KB).
    encoded = binascii.b2a_base64(body, newline=False)
    return b"\r\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]), "base64"


def part_header(content_type: str, cte: str) -> bytes:
    """The header block of one MIME part."""
    return f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'.encode()
