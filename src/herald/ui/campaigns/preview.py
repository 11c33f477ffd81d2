"""A send's message rendered for one sample contact through the same code path the worker uses.

The spec comes from the pipeline's own `message_spec`, and the bytes from `compile_message(...).render(...)`, so
the preview shows the merge values, the preheader, the inlined CSS and the footer links a recipient gets.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from herald.contacts.models import CONTACT_FIELDS, Contact
from herald.container import Container
from herald.delivery.render import compile_message
from herald.delivery.repository import SendInfo
from herald.sends.models import SingleSend
from herald.sends.pipeline import message_spec
from herald.templates.models import Sender

# A token that no delivery has (32 hex, like the real ones): links in the preview lead nowhere.
PREVIEW_TOKEN = "0" * 32
SAMPLE_EMAIL = "jane.doe@example.com"
SAMPLE_VALUES: dict[str, Any] = {"first_name": "Jane", "last_name": "Doe", "city": "Springfield"}


@dataclass
class Preview:
    """What the preview pane shows."""

    subject: str
    html: str | None
    text: str | None
    sample_email: str
    sample_is_real: bool


def render_preview(
    container: Container,
    *,
    subject: str,
    preheader: str,
    html: str,
    sender: Sender | None,
    sample: Contact | None,
) -> Preview:
    """Render the message for `sample` (or a made-up Jane Doe) exactly as the pipeline would."""
    base_url = container.settings.public_base_url()
    send = SingleSend(id=0, subject=subject or "(no subject)", preheader=preheader or "")
    spec = message_spec(SendInfo(send, sender, html, False), base_url)
    compiled = compile_message(spec, base_url=base_url, signer=container.signer, domain=container.settings.dkim_domain)
    if sample is not None:
        values: dict[str, Any] = {name: getattr(sample, name, None) for name in CONTACT_FIELDS}
        address = sample.email
    else:
        values, address = dict(SAMPLE_VALUES), SAMPLE_EMAIL
    try:
        data = compiled.render(email=address, token=PREVIEW_TOKEN, values=values)
    except ValueError:  # an address that needs SMTPUTF8: preview with the made-up contact instead
        data = compiled.render(email=SAMPLE_EMAIL, token=PREVIEW_TOKEN, values=SAMPLE_VALUES)
        address, sample = SAMPLE_EMAIL, None
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    html_part = msg.get_body(preferencelist=("html",))
    text_part = msg.get_body(preferencelist=("plain",))
    return Preview(
        subject=str(msg.get("Subject") or ""),
        html=html_part.get_content() if isinstance(html_part, EmailMessage) else None,
        text=text_part.get_content() if isinstance(text_part, EmailMessage) else None,
        sample_email=address,
        sample_is_real=sample is not None,
    )
