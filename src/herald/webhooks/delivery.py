"""Delivering queued webhook jobs: native signed JSON, or the Skycore XML postback.

Runs in the worker outside any transaction (the HTTP timeout, settings.webhook_timeout_seconds, 10 s by
default, must not hold a database lock). A failed or non-2xx delivery raises RetryLater and the job runs
again on its kind's schedule: native webhooks on the default backoff, Skycore postbacks every 5 minutes,
5 times after the first try (the outbox gives those jobs 6 attempts). Jobs of one webhook and subscriber
share an ordering key, so a retry holds back later events.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

import httpx

from herald import __version__
from herald.container import Container
from herald.jobs.models import Job
from herald.jobs.service import GiveUp, RetryLater, register
from herald.security import hmac_sha256_hex
from herald.webhooks.models import Webhook
from herald.webhooks.outbox import SKYCORE_JOB, WEBHOOK_JOB

SKYCORE_BACKOFF = [300.0] * 5
SIGNATURE_HEADER = "Herald-Signature"
# The Skycore postback codes of the events it has one for.
SKYCORE_CODES = {"list.subscribed": "N303", "list.unsubscribed": "N304"}


def sign(secret: str, body: bytes) -> str:
    """The Herald-Signature value of a body: `sha256=` and the hex HMAC-SHA256 keyed with the webhook's secret."""
    return "sha256=" + hmac_sha256_hex(secret.encode(), body)


def native_body(payload: dict[str, Any]) -> bytes:
    """The native JSON body {"event","at","data"}."""
    body = {"event": payload["event"], "at": payload["at"], "data": payload.get("data") or {}}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def skycore_body(code: str, email: str, campaign_id: object) -> bytes:
    """The Skycore email opt-in status postback."""
    return (
        "<?xml version='1.0'?><POSTBACK><ORIGIN>EMAIL_SUB</ORIGIN>"
        f"<CODE>{code}</CODE><EMAIL>{escape(email)}</EMAIL><CAMPAIGNID>{escape(str(campaign_id))}</CAMPAIGNID>"
        "</POSTBACK>"
    ).encode()


def _load(container: Container, job: Job) -> tuple[str, str, str | None]:
    """The webhook's url, format and plain secret, read in a short transaction of its own."""
    with container.transaction() as session:
        hook = session.get(Webhook, int(job.payload.get("webhook_id") or 0))
        if hook is None or (job.account_id is not None and hook.account_id != job.account_id):
            raise GiveUp("webhook no longer exists")
        url, fmt, secret_enc = hook.url, hook.format, hook.secret_enc
    try:
        secret = container.cipher.decrypt(secret_enc) if secret_enc else None
    except ValueError as exc:
        raise GiveUp("webhook secret cannot be decrypted (HERALD_SECRET_KEY changed?)") from exc
    return url, fmt, secret


def deliver(container: Container, job: Job) -> None:
    """POST one event to its webhook; RetryLater when the receiver is down or answers other than 2xx."""
    url, fmt, secret = _load(container, job)
    payload = job.payload
    if fmt == "skycore":
        code = SKYCORE_CODES.get(str(payload.get("event")))
        if code is None:
            return  # Skycore has no postback for this event: nothing to send.
        data = payload.get("data") or {}
        body = skycore_body(code, str(data.get("email", "")), data.get("list_id", ""))
        headers = {"Content-Type": "text/xml; charset=utf-8"}
    else:
        body = native_body(payload)
        headers = {"Content-Type": "application/json"}
    headers["User-Agent"] = f"Herald/{__version__}"
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    try:
        timeout = container.settings.webhook_timeout_seconds
        response = httpx.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise RetryLater(f"{type(exc).__name__}: {exc}") from exc
    except ValueError as exc:  # a URL httpx cannot use will not get better
        raise GiveUp(f"bad webhook URL: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise RetryLater(f"receiver answered HTTP {response.status_code}")


register(WEBHOOK_JOB, deliver)
register(SKYCORE_JOB, deliver, backoff=SKYCORE_BACKOFF)
