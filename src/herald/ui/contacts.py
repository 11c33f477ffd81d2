"""Admin pages (contacts)."""

from __future__ import annotations

from herald.ui.deps import ui_router

router = ui_router()
