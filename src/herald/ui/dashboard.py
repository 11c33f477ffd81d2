"""The dashboard: audience size by consent state, recent sends and activity per day."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from herald.ui.deps import UiDep, render, ui_router

router = ui_router()


@router.get("/ui/", response_class=HTMLResponse)
def dashboard(request: Request, ui: UiDep) -> HTMLResponse:
    """The first page after sign-in."""
    return render(request, "dashboard.html", title="Dashboard")
