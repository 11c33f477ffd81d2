"""The maildir outbox read back for the admin UI: newest first, headers only for listings.

The outbox holds every account's mail, so each message is attributed to an account before it is shown:
a single send's mail carries `X-Herald-Send`, an opt-in email's Message-ID is on its opt-in record.
Anything else (privacy links, which carry single-use credentials) is never shown.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

# Maildir file names Herald writes: "<unix time>.<hex>.<host>"; anything else is not ours to open.
_NAME = re.compile(r"^[0-9]+\.[0-9]+\.[0-9a-f]{32}\.[A-Za-z0-9._-]+$")
HEADER_BYTES = 16 * 1024


@dataclass
class OutboxItem:
    """One message as a listing shows it."""

    name: str
    subject: str
    to: str
    sender: str
    date: datetime
    send_id: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def outbox_path(smtp_url: str) -> Path | None:
    """The maildir folder HERALD_SMTP_URL names, or None when mail goes to an SMTP relay."""
    if smtp_url.startswith("maildir:"):
        return Path(smtp_url.split(":", 1)[1])
    return None


def _files(path: Path) -> list[Path]:
    found: list[Path] = []
    for sub in ("new", "cur"):
        folder = path / sub
        if folder.is_dir():
            found.extend(p for p in folder.iterdir() if p.is_file() and _NAME.match(p.name))
    # The name starts with the write time, so sorting names sorts by time without a stat per file.
    found.sort(key=lambda p: (float(p.name.split(".", 2)[0] + "." + p.name.split(".", 2)[1]), p.name), reverse=True)
    return found


def _headers(path: Path) -> EmailMessage:
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES)
    end = head.find(b"\r\n\r\n")
    head = head[: end + 2] if end >= 0 else head
    msg = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    assert isinstance(msg, EmailMessage)
    return msg


def _send_id(msg: EmailMessage) -> int | None:
    raw = str(msg.get("X-Herald-Send") or "").strip()
    return int(raw) if raw.isdigit() else None


def _item(path: Path, msg: EmailMessage) -> OutboxItem:
    stamp = float(".".join(path.name.split(".", 2)[:2]))
    return OutboxItem(
        name=path.name,
        subject=str(msg.get("Subject") or ""),
        to=str(msg.get("To") or msg.get("Delivered-To") or ""),
        sender=str(msg.get("From") or ""),
        date=datetime.fromtimestamp(stamp, UTC),
        send_id=_send_id(msg),
    )


Attribution = Callable[[EmailMessage], bool]


def attribution(send_ids: set[int], message_refs: set[str]) -> Attribution:
    """A predicate true for the messages that belong to the account with these sends and opt-in emails."""

    def mine(msg: EmailMessage) -> bool:
        send_id = _send_id(msg)
        if send_id is not None:
            return send_id in send_ids
        return str(msg.get("Message-ID") or "").strip() in message_refs

    return mine


def list_messages(path: Path, mine: Attribution, *, offset: int = 0, limit: int = 50) -> tuple[list[OutboxItem], int]:
    """One page of the account's messages, newest first, and how many the account has in all."""
    items: list[OutboxItem] = []
    total = 0
    for file in _files(path):
        try:
            msg = _headers(file)
        except OSError:
            continue  # removed while we looked
        if not mine(msg):
            continue
        if offset <= total < offset + limit:
            items.append(_item(file, msg))
        total += 1
    return items, total


@dataclass
class OutboxMessage:
    """One message opened: its headers, text part and HTML part."""

    item: OutboxItem
    html: str | None
    text: str | None


def read_message(path: Path, name: str, mine: Attribution) -> OutboxMessage | None:
    """The named message if it exists and belongs to the account; None otherwise (never a path outside)."""
    if not _NAME.match(name):
        return None
    for sub in ("new", "cur"):
        file = path / sub / name
        if file.is_file():
            break
    else:
        return None
    msg = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    if not mine(msg):
        return None
    item = _item(file, msg)
    item.headers = [(k, str(v)) for k, v in msg.items()]
    html_part = msg.get_body(preferencelist=("html",))
    text_part = msg.get_body(preferencelist=("plain",))
    html = html_part.get_content() if isinstance(html_part, EmailMessage) else None
    text = text_part.get_content() if isinstance(text_part, EmailMessage) else None
    return OutboxMessage(item=item, html=html, text=text)
