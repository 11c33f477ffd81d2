"""Pydantic shapes of single sends: the create/update body (as AllsTechnology's create call) and the answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from herald.sends.models import SingleSend
from herald.sends.stats import SendStats

Target = str


def target_strings(targets: list[dict[str, object]] | None) -> list[str]:
    """Stored `{"table","id"}` targets as the strings clients send ("contacts_3")."""
    return [f"{t['table']}{t['id']}" for t in targets or []]


class SendIn(BaseModel):
    """`POST /single-sends`: the AllsTechnology create call's fields, plus timezone and list_id."""

    model_config = ConfigDict(extra="forbid")

    single_send_name: str = Field(min_length=1, max_length=300)
    subject: str = Field(min_length=1, max_length=998)
    preheader: str = Field(default="", max_length=500)
    sender_id: int
    template_id: int = Field(default=1, description="Design template; 1 (Blank) means template_html is used.")
    template_html: str | None = None
    template_json: str | None = None
    unsubscribe_group_id: int | None = Field(default=None, description="Topic whose unsubscribers are left out.")
    list_id: int | None = Field(default=None, description="Only active subscribers of this list are eligible.")
    recipient_id: list[Target] = Field(min_length=1, examples=[["contacts_3", "segments_1"]])
    exclude_specific_recipient_id: list[Target] = Field(default_factory=list)
    schedule_type: int | None = Field(
        default=None, ge=0, le=1, description="0 send now, 1 at schedule_date/schedule_time; omitted: a draft."
    )
    schedule_date: str | None = Field(default=None, description="Y-m-d")
    schedule_time: str | None = Field(default=None, description="HH:MM or HH:MM:SS")
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone of schedule_date/time.")


class SendPatch(BaseModel):
    """`PATCH /single-sends/{id}`: any subset of the create fields (only before the send runs)."""

    model_config = ConfigDict(extra="forbid")

    single_send_name: str | None = Field(default=None, min_length=1, max_length=300)
    subject: str | None = Field(default=None, min_length=1, max_length=998)
    preheader: str | None = Field(default=None, max_length=500)
    sender_id: int | None = None
    template_id: int | None = None
    template_html: str | None = None
    template_json: str | None = None
    unsubscribe_group_id: int | None = None
    list_id: int | None = None
    recipient_id: list[Target] | None = Field(default=None, min_length=1)
    exclude_specific_recipient_id: list[Target] | None = None
    schedule_type: int | None = Field(default=None, ge=0, le=1)
    schedule_date: str | None = None
    schedule_time: str | None = None
    timezone: str | None = Field(default=None, max_length=64)


class ScheduleIn(BaseModel):
    """`POST /single-sends/{id}/schedule`: now (schedule_type 0) or at a local date and time."""

    model_config = ConfigDict(extra="forbid")

    schedule_type: int = Field(default=1, ge=0, le=1)
    schedule_date: str | None = None
    schedule_time: str | None = None
    timezone: str | None = Field(default=None, max_length=64)


class SendOut(BaseModel):
    """A single send with its stats and the counts of recipients left out, by reason."""

    id: int
    utr: str
    user_id: int | None
    single_send_name: str
    template_id: int | None
    template_html: str | None
    template_json: str | None
    sender_id: int | None
    unsubscribe_group_id: int | None
    list_id: int | None
    subject: str
    preheader: str
    recipient_id: list[str]
    exclude_specific_recipient_id: list[str]
    schedule_type: int
    schedule_date: str | None
    schedule_time: str | None
    timezone: str
    scheduled_at: datetime | None
    status: int = Field(description="0 initiate, 1 ready, 2 running, 3 completed")
    status_name: str
    paused: bool
    cancelled: bool
    sent_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    triggered: int
    delivered: int
    unique_opens: int
    total_opens: int
    clicks: int
    unique_clicks: int
    bounces: int
    complaints: int
    unsubscribes: int
    skipped: dict[str, int]


class SendPage(BaseModel):
    """A page of sends."""

    items: list[SendOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    """One recipient of a send in the ledger: who, what happened, and why not when skipped."""

    id: int
    email: str | None
    status: str
    sent_at: datetime | None
    error: str | None


class DeliveryPage(BaseModel):
    """A page of deliveries."""

    items: list[DeliveryOut]
    next_cursor: str | None


STATUS_NAMES = {0: "initiate", 1: "ready", 2: "running", 3: "completed"}


def send_out(send: SingleSend, stats: SendStats) -> SendOut:
    """The native answer for a send (the caller loads its stats in one query per page)."""
    return SendOut(
        id=send.id,
        utr=send.utr,
        user_id=send.user_id,
        single_send_name=send.name,
        template_id=send.template_id,
        template_html=send.template_html,
        template_json=send.template_json,
        sender_id=send.sender_id,
        unsubscribe_group_id=send.topic_id,
        list_id=send.list_id,
        subject=send.subject,
        preheader=send.preheader,
        recipient_id=target_strings(send.recipients),
        exclude_specific_recipient_id=target_strings(send.exclusions),
        schedule_type=send.schedule_type,
        schedule_date=send.schedule_date,
        schedule_time=send.schedule_time,
        timezone=send.timezone,
        scheduled_at=send.scheduled_at,
        status=send.status,
        status_name=STATUS_NAMES.get(send.status, str(send.status)),
        paused=send.paused,
        cancelled=send.cancelled,
        sent_at=send.sent_at,
        completed_at=send.completed_at,
        created_at=send.created_at,
        updated_at=send.updated_at,
        skipped=dict(send.skipped or {}),
        **stats.as_dict(),
    )
