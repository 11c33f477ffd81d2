"""Contact field rules shared by the API and the CSV import: lengths from the table, typed columns, custom fields."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import String

from herald.consent.addresses import normalise_email
from herald.contacts.models import CONTACT_FIELDS, Contact
from herald.errors import Invalid

INT_FIELDS = frozenset({"age"})
DATE_FIELDS = frozenset({"birth_date", "join_date"})
MAX_AGE = 150
MAX_CUSTOM_FIELDS = 100
MAX_CUSTOM_NAME = 100
MAX_CUSTOM_VALUE = 2000
MAX_CUSTOM_BYTES = 16_000
NORMALISED_EMAIL_FIELDS = frozenset({"alt_email"})


def _lengths() -> dict[str, int]:
    """Maximum length of every text column, read from the table so the rule and the schema cannot drift."""
    out: dict[str, int] = {}
    for name in CONTACT_FIELDS:
        col_type = Contact.__table__.c[name].type
        if isinstance(col_type, String) and col_type.length:
            out[name] = col_type.length
    return out


MAX_LENGTHS = _lengths()

# Plain ASCII addresses that email_validator certainly accepts, checked in ~1 µs instead of ~60 µs; anything
# else takes the full check. Hyphen pairs, punycode and special-use TLDs are left to the full check.
_FAST_EMAIL = re.compile(
    r"[a-z0-9_+\-]{1,64}(?:\.[a-z0-9_+\-]+)*@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+([a-z]{2,63})"
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def clean_email(raw: Any, *, field: str = "email") -> str:
    """The normalised email (as herald.consent.addresses.normalise_email), fast for the common shapes."""
    if isinstance(raw, str):
        value = raw.strip().lower()
        match = _FAST_EMAIL.fullmatch(value)
        if (
            match is not None
            and len(value) <= 254
            and value.index("@") <= 64
            and "--" not in value[value.index("@") :]
            and match.group(1) not in _SPECIAL_USE_TLDS
        ):
            return value
    return normalise_email(raw, field=field)


def clean_value(name: str, raw: Any) -> Any:
    """One profile field, checked and converted; None for an empty value."""
    if raw is None:
        return None
    if name in INT_FIELDS:
        return _clean_int(name, raw)
    if not isinstance(raw, str):
        raise Invalid(name, "must be a string")
    value = raw.strip()
    if not value:
        return None
    if len(value) > MAX_LENGTHS[name]:
        raise Invalid(name, f"must be at most {MAX_LENGTHS[name]} characters")
    if "\x00" in value:
        raise Invalid(name, "must not contain NUL characters")
    if name in DATE_FIELDS:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise Invalid(name, "must be a date YYYY-MM-DD") from None
        if len(value) != 10:
            raise Invalid(name, "must be a date YYYY-MM-DD")
    if name in NORMALISED_EMAIL_FIELDS:
        value = clean_email(value, field=name)
    return value


def _clean_int(name: str, raw: Any) -> int | None:
    if isinstance(raw, bool):
        raise Invalid(name, "must be a whole number")
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        if not text.isdigit() or len(text) > 3:
            raise Invalid(name, f"must be a whole number between 0 and {MAX_AGE}")
        raw = int(text)
    if not isinstance(raw, int):
        raise Invalid(name, "must be a whole number")
    if raw < 0 or raw > MAX_AGE:
        raise Invalid(name, f"must be between 0 and {MAX_AGE}")
    return raw


def clean_profile(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every given profile field checked; Invalid names the first bad field."""
    return {name: clean_value(name, raw) for name, raw in values.items()}


def clean_custom_fields(raw: Any, *, field: str = "fields") -> dict[str, Any]:
    """Custom fields: a flat object of scalars with bounded names, values and total size."""
    if not isinstance(raw, Mapping):
        raise Invalid(field, "must be an object")
    if len(raw) > MAX_CUSTOM_FIELDS:
        raise Invalid(field, f"at most {MAX_CUSTOM_FIELDS} custom fields")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_CUSTOM_NAME or "\x00" in name:
            raise Invalid(field, f"custom field names are 1-{MAX_CUSTOM_NAME} characters")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise Invalid(f"{field}.{name}", "must be a string, number, boolean or null")
        if isinstance(value, str) and len(value) > MAX_CUSTOM_VALUE:
            raise Invalid(f"{field}.{name}", f"must be at most {MAX_CUSTOM_VALUE} characters")
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL's jsonb refuses NUL
            raise Invalid(f"{field}.{name}", "must not contain NUL characters")
        if isinstance(value, float) and not math.isfinite(value):  # NaN and infinities are not JSON
            raise Invalid(f"{field}.{name}", "must be a finite number")
        out[name.strip()] = value
    if len(json.dumps(out)) > MAX_CUSTOM_BYTES:
        raise Invalid(field, f"custom fields must be at most {MAX_CUSTOM_BYTES} bytes as JSON")
    return out
