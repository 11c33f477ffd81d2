"""Classifying raw reports: hard and soft bounces, complaints, and anything else."""

from __future__ import annotations

import pytest

from herald.inbound import parse
from tests.inbound import samples

MID = "<0123456789abcdef0123456789abcdef@herald.test>"


def test_postfix_hard_bounce() -> None:
    r = parse.parse_report(samples.hard_bounce(MID, "Ann@Example.com", delivery_header="tok123"))
    assert (r.kind, r.outcome, r.status) == ("dsn", "hard_bounce", "5.1.1")
    assert r.detail and "User unknown" in r.detail
    assert r.recipients == ["ann@example.com"]
    assert r.message_ids == [MID] and r.delivery_tokens == ["tok123"]


def test_delayed_dsn_is_a_soft_bounce() -> None:
    r = parse.parse_report(samples.soft_bounce(MID, "ann@example.com"))
    assert (r.kind, r.outcome, r.status) == ("dsn", "soft_bounce", "4.2.2")
    assert r.message_ids == [MID]


def test_failed_with_4xx_status_is_soft() -> None:
    raw = samples.hard_bounce(MID, "ann@example.com").replace(b"Status: 5.1.1", b"Status: 4.4.7")
    assert parse.parse_report(raw).outcome == "soft_bounce"


def test_delivered_notice_is_nothing_to_act_on() -> None:
    r = parse.parse_report(samples.success_notice(MID, "ann@example.com"))
    assert r.kind == "dsn" and r.outcome is None


def test_arf_abuse_report() -> None:
    r = parse.parse_report(samples.complaint(MID, "ann@example.com"))
    assert (r.kind, r.outcome) == ("arf", "complaint")
    assert r.recipients == ["ann@example.com"] and r.message_ids == [MID]


@pytest.mark.parametrize("feedback_type", ["not-spam", "auth-failure"])
def test_arf_that_is_not_a_complaint(feedback_type: str) -> None:
    r = parse.parse_report(samples.complaint(MID, "ann@example.com", feedback_type=feedback_type))
    assert r.kind == "arf" and r.outcome is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Subject: hello\r\n\r\nJust a normal message\r\n",
        b'Content-Type: multipart/report; boundary="x"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n',
        b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary at all",
    ],
)
def test_anything_else_is_unknown_and_never_raises(raw: bytes) -> None:
    r = parse.parse_report(raw)
    assert r.outcome is None and r.recipients == []
