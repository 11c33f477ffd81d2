"""The campaign pages' router: single sends, messages, opt-in rules and the outbox."""

from __future__ import annotations

from fastapi import APIRouter

from herald.ui.campaigns import messages, optin, outbox, sends

router = APIRouter(include_in_schema=False)
for _module in (sends, messages, optin, outbox):
    router.include_router(_module.router)
