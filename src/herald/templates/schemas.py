"""Pydantic shapes of the native senders, templates and messages routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Bodies are capped at 5 MB by the API; one HTML or text part may use most of that.
MAX_CONTENT = 4 * 1024 * 1024


class SenderIn(BaseModel):
    """`POST /senders`."""

    model_config = ConfigDict(extra="forbid")

    from_email: str = Field(max_length=320)
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = Field(default=None, max_length=320)
    address: str | None = Field(default=None, max_length=500, description="Postal address shown in the footer.")


class SenderOut(BaseModel):
    """A sender."""

    id: int
    from_email: str
    from_name: str | None
    reply_to: str | None
    address: str | None
    created_at: datetime


class SenderPage(BaseModel):
    """A page of senders."""

    items: list[SenderOut]
    next_cursor: str | None


class TemplateIn(BaseModel):
    """`POST /templates`; `json` is the editor's design document (an object or its JSON text)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    html: str = Field(default="", max_length=MAX_CONTENT)
    design: dict[str, Any] | list[Any] | str | None = Field(default=None, alias="json")


class TemplateOut(BaseModel):
    """A design template; `builtin` ones belong to no account."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    name: str
    preview_image: str | None
    html: str
    design: str = Field(alias="json")
    is_blank: bool
    builtin: bool
    created_at: datetime | None


class TemplatePage(BaseModel):
    """A page of templates: the built-in ones first, then the account's."""

    items: list[TemplateOut]
    next_cursor: str | None


class MessageIn(BaseModel):
    """`POST /messages`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=500)
    html: str = Field(default="", max_length=MAX_CONTENT)
    text: str = Field(default="", max_length=MAX_CONTENT)
    customoptin: bool = Field(default=False, description="May serve as a custom opt-in email.")
    sender_id: int | None = None
    category_id: int | None = None


class MessagePatch(BaseModel):
    """`PATCH /messages/{id}`: only the fields given change; null is refused."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    subject: str | None = Field(default=None, min_length=1, max_length=500)
    html: str | None = Field(default=None, max_length=MAX_CONTENT)
    text: str | None = Field(default=None, max_length=MAX_CONTENT)
    customoptin: bool | None = None
    sender_id: int | None = None
    category_id: int | None = None


class MessageOut(BaseModel):
    """An email message; `locked` once an opt-in rule uses it."""

    id: int
    name: str
    subject: str
    html: str
    text: str
    customoptin: bool
    locked: bool
    sender_id: int | None
    category_id: int | None
    user_id: int | None
    created_at: datetime
    updated_at: datetime


class MessagePage(BaseModel):
    """A page of messages."""

    items: list[MessageOut]
    next_cursor: str | None
