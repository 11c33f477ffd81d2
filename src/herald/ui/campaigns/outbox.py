"""The outbox: on the embedded default, every message Herald wrote to the maildir, newest first, rendered safely."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from herald.errors import NotFound
from herald.ui.campaigns import maildir
from herald.ui.campaigns.repository import CampaignPagesRepository
from herald.ui.deps import UiContext, UiDep, render, ui_router

router = ui_router()
PAGE_SIZE = 50


def _mine(ui: UiContext) -> maildir.Attribution:
    repo = CampaignPagesRepository(ui.session)
    aid = ui.actor.account_id
    return maildir.attribution(repo.send_ids(aid), repo.optin_message_refs(aid))


@router.get("/ui/outbox", response_class=HTMLResponse)
def outbox(request: Request, ui: UiDep, page: int = 1) -> Response:
    """The account's mail in the maildir; with an SMTP relay configured, a note saying where mail goes instead."""
    settings = ui.container.settings
    path = maildir.outbox_path(settings.smtp_url)
    page = max(page, 1)
    items: list[maildir.OutboxItem] = []
    total = 0
    if path is not None and path.exists():
        items, total = maildir.list_messages(path, _mine(ui), offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    relay = None
    if path is None:
        relay = settings.smtp_url.split("@", 1)[-1].split("?", 1)[0].removeprefix("smtp://")
    return render(
        request,
        "campaigns/outbox.html",
        title="Outbox",
        outbox_dir=path,
        relay=relay,
        items=items,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
    )


@router.get("/ui/outbox/{name}", response_class=HTMLResponse)
def outbox_message(request: Request, name: str, ui: UiDep) -> Response:
    """One message: its headers, its text part, and its HTML part in a sandboxed frame (never run in our origin)."""
    path = maildir.outbox_path(ui.container.settings.smtp_url)
    message = maildir.read_message(path, name, _mine(ui)) if path is not None else None
    if message is None:
        raise NotFound("message", name)
    return render(
        request, "campaigns/outbox_message.html", title=message.item.subject or "(no subject)", message=message
    )
