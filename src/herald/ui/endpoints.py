"""The admin UI router: sign-in, the audience pages and the campaign pages, all under /ui."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from fastapi import APIRouter

# Each module exposes `router` (made with herald.ui.deps.ui_router()).
UI_ROUTERS = (
    "herald.ui.auth",
    "herald.ui.dashboard",
    "herald.ui.contacts",
    "herald.ui.audience",
)
# Built in parallel by the campaign pages; included once the package exists.
OPTIONAL_ROUTERS = ("herald.ui.campaigns.endpoints",)

router = APIRouter(include_in_schema=False)
for _module in UI_ROUTERS:
    router.include_router(import_module(_module).router)
for _module in OPTIONAL_ROUTERS:
    if find_spec(_module.rsplit(".", 1)[0]) is not None and find_spec(_module) is not None:
        router.include_router(import_module(_module).router)
