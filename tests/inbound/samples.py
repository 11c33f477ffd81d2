"""Realistic bounce and complaint messages: a Postfix DSN, a delayed-delivery DSN and an RFC 5965 ARF report."""

from __future__ import annotations


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def _original_headers(message_id: str, rcpt: str, delivery_header: str | None) -> str:
    extra = f"X-Herald-Delivery: {delivery_header}\n" if delivery_header else ""
    return (
        "Return-Path: <bounces@herald.test>\n"
        "Received: from herald.test (herald.test [198.51.100.7])\n"
        "\tby mx.example.net (Postfix) with ESMTPS id 3F2A1C0123\n"
        f"\tfor <{rcpt}>; Tue, 14 May 2024 10:02:10 +0000 (UTC)\n"
        "Date: Tue, 14 May 2024 10:02:09 +0000\n"
        "From: Acme News <news@acme.test>\n"
        f"To: {rcpt}\n"
        "Subject: Spring news\n"
        f"Message-ID: {message_id}\n"
        f"{extra}"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
        "MIME-Version: 1.0\n"
        'Content-Type: text/plain; charset="utf-8"\n'
    )


def hard_bounce(message_id: str, rcpt: str, *, delivery_header: str | None = None) -> bytes:
    """Postfix's non-delivery report for an unknown user (550 5.1.1), with the original message's headers."""
    return _crlf(
        "Return-Path: <>\n"
        "Received: by mx.example.net (Postfix) id 3F2A1C0123; Tue, 14 May 2024 10:02:11 +0000 (UTC)\n"
        "Date: Tue, 14 May 2024 10:02:11 +0000 (UTC)\n"
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "To: bounces@herald.test\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        '\tboundary="3F2A1C0123.1715680931/mx.example.net"\n'
        "Message-Id: <20240514100211.3F2A1C0123@mx.example.net>\n"
        "\n"
        "This is a MIME-encapsulated message.\n"
        "\n"
        "--3F2A1C0123.1715680931/mx.example.net\n"
        "Content-Description: Notification\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "This is the mail system at host mx.example.net.\n"
        "\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n"
        "\n"
        f"<{rcpt}>: host mx.example.com[203.0.113.5] said: 550 5.1.1\n"
        f"    <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox\n"
        "    table (in reply to RCPT TO command)\n"
        "\n"
        "--3F2A1C0123.1715680931/mx.example.net\n"
        "Content-Description: Delivery report\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.example.net\n"
        "X-Postfix-Queue-ID: 3F2A1C0123\n"
        "X-Postfix-Sender: rfc822; bounces@herald.test\n"
        "Arrival-Date: Tue, 14 May 2024 10:02:10 +0000 (UTC)\n"
        "\n"
        f"Final-Recipient: rfc822; {rcpt}\n"
        f"Original-Recipient: rfc822;{rcpt}\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "Remote-MTA: dns; mx.example.com\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected:\n"
        "    User unknown in virtual mailbox table\n"
        "\n"
        "--3F2A1C0123.1715680931/mx.example.net\n"
        "Content-Description: Undelivered Message Headers\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        f"{_original_headers(message_id, rcpt, delivery_header)}"
        "\n"
        "--3F2A1C0123.1715680931/mx.example.net--\n"
    )


def soft_bounce(message_id: str, rcpt: str) -> bytes:
    """A delayed-delivery warning (4.2.2 mailbox full), with the whole original message attached."""
    return _crlf(
        "Date: Tue, 14 May 2024 14:02:11 +0000 (UTC)\n"
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        "Subject: Delayed Mail (still being retried)\n"
        "To: bounces@herald.test\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="DELAY.42"\n'
        "\n"
        "--DELAY.42\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "Your message could not be delivered for more than 4 hour(s). It will be retried until it is 5 day(s) old.\n"
        "\n"
        "--DELAY.42\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.example.net\n"
        "\n"
        f"Final-Recipient: rfc822; {rcpt}\n"
        "Action: delayed\n"
        "Status: 4.2.2\n"
        "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\n"
        "Will-Retry-Until: Sun, 19 May 2024 10:02:10 +0000 (UTC)\n"
        "\n"
        "--DELAY.42\n"
        "Content-Type: message/rfc822\n"
        "\n"
        f"{_original_headers(message_id, rcpt, None)}"
        "\n"
        "Hello Ann, here is our spring news.\n"
        "\n"
        "--DELAY.42--\n"
    )


def complaint(message_id: str, rcpt: str, *, feedback_type: str = "abuse", redacted: bool = False) -> bytes:
    """An RFC 5965 abuse report as a mailbox provider's feedback loop sends it (modelled on its Appendix B)."""
    shown = "redacted@example.com" if redacted else rcpt
    rcpt_fields = "" if redacted else f"Original-Rcpt-To: <{rcpt}>\nRemoval-Recipient: {rcpt}\n"
    return _crlf(
        "From: <feedback@fbl.example.com>\n"
        "Date: Thu, 16 May 2024 17:40:36 +0000\n"
        "Subject: FW: Spring news\n"
        "To: <abuse@herald.test>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report;\n"
        '     boundary="part1_13d.2e68ed54_boundary"\n'
        "\n"
        "--part1_13d.2e68ed54_boundary\n"
        'Content-Type: text/plain; charset="US-ASCII"\n'
        "Content-Transfer-Encoding: 7bit\n"
        "\n"
        "This is an email abuse report for an email message received from IP\n"
        "198.51.100.7 on Tue, 14 May 2024 10:02:10 +0000.\n"
        "\n"
        "--part1_13d.2e68ed54_boundary\n"
        "Content-Type: message/feedback-report\n"
        "\n"
        f"Feedback-Type: {feedback_type}\n"
        "User-Agent: SomeGenerator/1.0\n"
        "Version: 1\n"
        "Original-Mail-From: <bounces@herald.test>\n"
        f"{rcpt_fields}"
        "Arrival-Date: Tue, 14 May 2024 10:02:10 +0000\n"
        "Reporting-MTA: dns; mail.example.com\n"
        "Source-IP: 198.51.100.7\n"
        "Authentication-Results: mail.example.com; spf=pass smtp.mail=bounces@herald.test\n"
        "Reported-Domain: acme.test\n"
        "\n"
        "--part1_13d.2e68ed54_boundary\n"
        "Content-Type: message/rfc822\n"
        "Content-Disposition: inline\n"
        "\n"
        f"{_original_headers(message_id, shown, None)}"
        "\n"
        "Hello, here is our spring news.\n"
        "--part1_13d.2e68ed54_boundary--\n"
    )


def success_notice(message_id: str, rcpt: str) -> bytes:
    """A DSN saying the message was delivered (asked for with NOTIFY=SUCCESS): nothing to act on."""
    return (
        hard_bounce(message_id, rcpt)
        .replace(b"Action: failed", b"Action: delivered")
        .replace(b"Status: 5.1.1", b"Status: 2.0.0")
    )
