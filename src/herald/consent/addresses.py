"""Email normalisation: trimmed, lowercased, syntax-checked (never a DNS look-up)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from herald.errors import Invalid

MAX_EMAIL_LENGTH = 320
_FORBIDDEN = frozenset("\r\n\x00")


def normalise_email(raw: str | None, *, field: str = "email") -> str:
    """The normalised form every API echoes; Invalid(field) for anything that is not an address."""
    if raw is None or not str(raw).strip():
        raise Invalid(field, "is required")
    value = str(raw).strip().lower()
    if len(value) > MAX_EMAIL_LENGTH:
        raise Invalid(field, f"must be at most {MAX_EMAIL_LENGTH} characters")
    if _FORBIDDEN & set(value):
        raise Invalid(field, "is not a valid email address")
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise Invalid(field, f"is not a valid email address ({exc})") from None
    return value


def lookup_form(raw: object) -> str | None:
    """The form a stored address of this text would have, without the syntax check; None when no stored
    address can have it. Every stored email is normalise_email's output, so a look-up by this form finds
    exactly what normalising first would (an invalid one matches no row), for hot read paths that can
    skip email_validator."""
    value = str(raw).strip().lower()
    if not value or len(value) > MAX_EMAIL_LENGTH or _FORBIDDEN & set(value):
        return None
    return value


def looks_like_email(raw: str) -> bool:
    """True when the value is a syntactically valid address (used where a field may be an id or an email)."""
    try:
        normalise_email(raw)
    except Invalid:
        return False
    return True
