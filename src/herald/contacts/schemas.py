"""Pydantic shapes of the native contacts, contact-types and segments routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from herald.contacts.validation import MAX_AGE, MAX_LENGTHS

_DATE = r"^\d{4}-\d{2}-\d{2}$"


def _text(name: str) -> Any:
    return Field(default=None, max_length=MAX_LENGTHS[name])


class ContactFields(BaseModel):
    """The profile fields of a contact (the seed's Get Dynamic Content list), all optional."""

    model_config = ConfigDict(extra="forbid")

    first_name: str | None = _text("first_name")
    last_name: str | None = _text("last_name")
    alt_email: str | None = _text("alt_email")
    country: str | None = _text("country")
    state: str | None = _text("state")
    city: str | None = _text("city")
    address_line1: str | None = _text("address_line1")
    address_line2: str | None = _text("address_line2")
    state_province_region: str | None = _text("state_province_region")
    postal_code: str | None = _text("postal_code")
    father_name: str | None = _text("father_name")
    designation: str | None = _text("designation")
    age: int | None = Field(default=None, ge=0, le=MAX_AGE)
    company_name: str | None = _text("company_name")
    birth_date: str | None = Field(default=None, pattern=_DATE, description="YYYY-MM-DD")
    join_date: str | None = Field(default=None, pattern=_DATE, description="YYYY-MM-DD")
    contact_type_id: int | None = Field(default=None, description="A contact type of the account.")
    fields: dict[str, Any] | None = Field(default=None, description="Custom fields: names to scalar values.")


class ContactIn(ContactFields):
    """`POST /contacts`."""

    email: str = Field(max_length=320)


class ContactPatch(ContactFields):
    """`PATCH /contacts/{id}`: only the given fields change; in `fields`, a null value removes that key."""

    email: str | None = Field(default=None, max_length=320)


class ContactOut(BaseModel):
    """A contact."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    alt_email: str | None
    country: str | None
    state: str | None
    city: str | None
    address_line1: str | None
    address_line2: str | None
    state_province_region: str | None
    postal_code: str | None
    father_name: str | None
    designation: str | None
    age: int | None
    company_name: str | None
    birth_date: str | None
    join_date: str | None
    contact_type_id: int | None
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ContactPage(BaseModel):
    """A page of contacts."""

    items: list[ContactOut]
    next_cursor: str | None


class ContactTypeIn(BaseModel):
    """`POST /contact-types`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class ContactTypeOut(BaseModel):
    """A contact type."""

    id: int
    name: str
    created_at: datetime


class ContactTypePage(BaseModel):
    """A page of contact types."""

    items: list[ContactTypeOut]
    next_cursor: str | None


class SegmentIn(BaseModel):
    """`POST /segments`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    rules: dict[str, Any] = Field(
        description='{"all"|"any": [rule or group]}; a rule is {"field", "op", "value"}, ops eq, ne, contains, '
        'in, gt, lt, exists; custom fields as "fields.<name>".',
        examples=[{"all": [{"field": "country", "op": "eq", "value": "DE"}]}],
    )


class SegmentOut(BaseModel):
    """A segment."""

    id: int
    name: str
    rules: dict[str, Any]
    created_at: datetime


class SegmentPage(BaseModel):
    """A page of segments."""

    items: list[SegmentOut]
    next_cursor: str | None
