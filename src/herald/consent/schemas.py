"""Pydantic shapes of the native addresses and topics routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StatusChange(BaseModel):
    """`PUT /addresses/{email}/status`."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["opted_in", "opted_out", "bounced", "spam_reported"]
    until: datetime | date | None = Field(default=None, description="End of a temporary opt-out (date or datetime).")
    topic_id: int | None = Field(default=None, description="Change only this topic: opted_out unsubscribes.")
    reason: str | None = Field(default=None, max_length=2000)


class TopicIn(BaseModel):
    """`POST /topics`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    enabled: bool = True


class TopicOut(BaseModel):
    """A topic."""

    id: int
    name: str
    description: str
    enabled: bool


class AddressTopic(BaseModel):
    """A topic as one address sees it."""

    id: int
    name: str
    unsubscribed: bool


class AddressList(BaseModel):
    """A list subscription of one address."""

    id: int
    name: str
    status: str


class AddressOut(BaseModel):
    """`GET /addresses/{email}`."""

    email: str
    status: str
    opted_out_until: datetime | None
    topics: list[AddressTopic]
    lists: list[AddressList]


class EventOut(BaseModel):
    """One ledger entry."""

    id: int
    at: datetime
    source: str
    credential: int | None
    from_status: str | None
    to_status: str | None
    list_id: int | None
    topic_id: int | None
    reason: str | None
    ip: str | None


class EventPage(BaseModel):
    """A page of the ledger."""

    items: list[EventOut]
    next_cursor: str | None


class TopicPage(BaseModel):
    """A page of topics."""

    items: list[TopicOut]
    next_cursor: str | None
