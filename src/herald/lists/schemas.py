"""Pydantic shapes of the native categories, lists and subscriptions routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CategoryIn(BaseModel):
    """`POST /categories`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class CategoryOut(BaseModel):
    """A category (folder of lists)."""

    id: int
    name: str
    created_at: datetime


class CategoryPage(BaseModel):
    """A page of categories."""

    items: list[CategoryOut]
    next_cursor: str | None


class ListIn(BaseModel):
    """`POST /lists`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    category_id: int | None = None
    double_opt_in: bool = Field(default=False, description="New subscriptions start unconfirmed unless posted active.")


class ListOut(BaseModel):
    """A list."""

    id: int
    name: str
    category_id: int | None
    double_opt_in: bool
    created_at: datetime


class ListPage(BaseModel):
    """A page of lists."""

    items: list[ListOut]
    next_cursor: str | None


class SubscriptionIn(BaseModel):
    """`POST /lists/{id}/subscriptions`."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    status: Literal["unconfirmed", "active"] | None = Field(
        default=None, description="Default: unconfirmed on a double opt-in list, active otherwise."
    )
    reason: str | None = Field(default=None, max_length=2000, description="Recorded in the consent ledger.")


class SubscriptionOut(BaseModel):
    """A subscription of an address to a list."""

    id: int
    list_id: int
    email: str
    status: str
    created_at: datetime
    updated_at: datetime


class SubscriptionPage(BaseModel):
    """A page of a list's subscriptions."""

    items: list[SubscriptionOut]
    next_cursor: str | None
