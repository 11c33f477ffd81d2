"""Pydantic shapes of the native /optin-automations routes (fields as Sign-Up.to's optinAutomation)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt


class RuleIn(BaseModel):
    """`POST /optin-automations`: `list_id` must be sent; an explicit null makes the catch-all rule."""

    model_config = ConfigDict(extra="forbid")

    list_id: StrictInt | None = Field(description="The list the rule confirms; null for the account's catch-all.")
    message_id: StrictInt = Field(description="A message with customoptin true, sent as the opt-in email.")
    name: str = Field(min_length=1, max_length=300)
    paused: StrictBool = False
    summary: str | None = Field(default=None, max_length=2000, description="Generated in English when omitted.")


class RulePatch(BaseModel):
    """`PATCH /optin-automations/{id}`: any of these; `list_id` cannot change."""

    model_config = ConfigDict(extra="forbid")

    list_id: StrictInt | None = None
    message_id: StrictInt | None = None
    name: str | None = Field(default=None, min_length=1, max_length=300)
    paused: StrictBool | None = None
    summary: str | None = Field(default=None, max_length=2000)


class RuleOut(BaseModel):
    """An opt-in automation rule; cdate/mdate are Unix seconds."""

    id: int
    list_id: int | None
    message_id: int
    name: str
    paused: bool
    summary: str | None
    user_id: int
    cdate: int
    mdate: int


class RulePage(BaseModel):
    """A page of rules."""

    items: list[RuleOut]
    next_cursor: str | None
