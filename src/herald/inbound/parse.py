"""Reading bounce and complaint reports with the standard library's email package.

- RFC 3464 delivery status notifications: `multipart/report; report-type=delivery-status` with a
  `message/delivery-status` part (one block per message, then one per recipient). `Action: failed` with a
  5.x.x `Status` is a hard bounce; a 4.x.x status or `Action: delayed` is a soft bounce.
- RFC 5965 abuse reports (ARF): `multipart/report; report-type=feedback-report` with a
  `message/feedback-report` part; `Feedback-Type` abuse, fraud, virus or other is a complaint.
Both carry the original message (`message/rfc822`) or its headers (`text/rfc822-headers`) in the third part,
whose Message-ID and `X-Herald-Delivery` header name the delivery. Parsing never raises: what cannot be
read is a report of kind "unknown".
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

from herald.consent.addresses import normalise_email
from herald.errors import Invalid

DSN, ARF, UNKNOWN = "dsn", "arf", "unknown"
HARD_BOUNCE, SOFT_BOUNCE, COMPLAINT = "hard_bounce", "soft_bounce", "complaint"
DELIVERY_HEADER = "X-Herald-Delivery"
_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_SMTP_CODE = re.compile(r"\b([245])\d\d\b")
_COMPLAINT_TYPES = {"abuse", "fraud", "virus", "other"}
_MAX_HEADER = 998


@dataclass
class Report:
    """What a bounce or complaint says, and how to find the delivery it is about."""

    kind: str = UNKNOWN
    outcome: str | None = None  # hard_bounce | soft_bounce | complaint | None (nothing to act on)
    status: str | None = None  # the DSN status code, "5.1.1"
    detail: str | None = None  # diagnostic code or feedback type, for the ledger's reason
    recipients: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    delivery_tokens: list[str] = field(default_factory=list)


def parse_report(raw: bytes) -> Report:
    """Classify a raw RFC 5322 message as a DSN, an ARF report or neither, with its matching hints."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        report = _find_report(msg)
        if report is None:
            return Report()
        return _read(report)
    except Exception:  # hostile input must not escape as an error; it is simply not a report we can read
        return Report()


def _find_report(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == "multipart/report":
            return part
    return None


def _read(report: Message) -> Report:
    result = Report()
    parts = report.get_payload()
    if not isinstance(parts, list):
        return result
    for part in parts:
        if not isinstance(part, Message):
            continue
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            _read_dsn(part, result)
        elif ctype == "message/feedback-report":
            _read_arf(part, result)
        elif ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
            original = _original(part)
            if original is not None:
                _read_original(original, result)
    return result


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    if isinstance(payload, str):  # a parser that left the fields as text
        return [HeaderParser().parsestr(chunk) for chunk in re.split(r"\r?\n\r?\n", payload) if chunk.strip()]
    return []


def _read_dsn(part: Message, result: Report) -> None:
    result.kind = DSN
    outcomes: list[str] = []
    for block in _blocks(part)[1:]:
        action = _field(block, "Action").lower()
        status_match = _STATUS.search(_field(block, "Status"))
        diagnostic = _field(block, "Diagnostic-Code")
        status = status_match.group(0) if status_match else None
        klass = status[0] if status else _smtp_class(diagnostic)
        for name in ("Original-Recipient", "Final-Recipient"):
            _add_recipient(result, _field(block, name))
        if action == "failed" and klass == "5":
            outcomes.append(HARD_BOUNCE)
        elif action == "delayed" or (action == "failed" and klass in ("4", None)):
            outcomes.append(SOFT_BOUNCE)
        else:
            continue
        if result.status is None or outcomes[-1] == HARD_BOUNCE:
            result.status, result.detail = status, diagnostic or None
    if HARD_BOUNCE in outcomes:
        result.outcome = HARD_BOUNCE
    elif SOFT_BOUNCE in outcomes:
        result.outcome = SOFT_BOUNCE


def _smtp_class(diagnostic: str) -> str | None:
    match = _SMTP_CODE.search(diagnostic)
    return match.group(1) if match else None


def _read_arf(part: Message, result: Report) -> None:
    result.kind = ARF
    fields = _blocks(part)
    if not fields:
        return
    block = fields[0]
    feedback_type = (_field(block, "Feedback-Type") or "abuse").lower()
    result.detail = f"feedback-type {feedback_type}"
    if feedback_type in _COMPLAINT_TYPES:
        result.outcome = COMPLAINT
    for name in ("Original-Rcpt-To", "Removal-Recipient"):
        for value in block.get_all(name) or []:
            _add_recipient(result, str(value))


def _original(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        first = payload[0] if payload else None
        return first if isinstance(first, Message) else None
    if isinstance(payload, str):
        return HeaderParser().parsestr(payload)
    return None


def _read_original(original: Message, result: Report) -> None:
    message_id = _field(original, "Message-ID")
    if message_id:
        result.message_ids.append(message_id)
    for value in original.get_all(DELIVERY_HEADER) or []:
        token = str(value).strip()
        if token:
            result.delivery_tokens.append(token[:_MAX_HEADER])
    if not result.recipients:
        _add_recipient(result, _field(original, "To"))


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    if value is None:
        return ""
    return " ".join(str(value).split())[:_MAX_HEADER]


def _add_recipient(result: Report, value: str) -> None:
    """Add an address from "rfc822; user@example.com", "<user@example.com>" or "Name <user@example.com>"."""
    if not value:
        return
    value = value.split(";", 1)[1] if ";" in value else value
    address = email.utils.parseaddr(value)[1]
    if "@" not in address:
        return
    try:
        normalised = normalise_email(address)
    except Invalid:
        return
    if normalised not in result.recipients:
        result.recipients.append(normalised)
