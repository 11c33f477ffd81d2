"""Pydantic shapes of the native webhooks routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class WebhookIn(BaseModel):
    """`POST /webhooks`."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="Any http(s) URL; loopback and private addresses are allowed.")
    events: list[str] | None = Field(
        default=None, max_length=50, description="Events to receive; default: every event the format carries."
    )
    secret: str | None = Field(default=None, max_length=200, description="Signs native bodies; never returned.")
    format: Literal["native", "skycore"] = "native"


class WebhookOut(BaseModel):
    """A webhook (its secret is never returned)."""

    id: int
    url: str
    events: list[str]
    format: str
    has_secret: bool
    created_at: datetime


class WebhookPage(BaseModel):
    """A page of webhooks."""

    items: list[WebhookOut]
    next_cursor: str | None
