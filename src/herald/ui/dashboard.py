"""The dashboard: audience size by consent state, recent sends with their stats, activity per day."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from herald.consent.rules import STATUSES
from herald.db.base import utcnow
from herald.sends.models import SingleSend
from herald.sends.stats import stats_for
from herald.ui.deps import UiDep, render, ui_router
from herald.ui.repository import UiRepository

router = ui_router()
CHART_DAYS = 30
# SingleSend.status codes (the AllsTechnology numbering) as words.
SEND_STATUS = {0: "draft", 1: "scheduled", 2: "running", 3: "sent"}


def send_status(send: SingleSend) -> str:
    """A send's state in one word for a badge."""
    return "cancelled" if send.cancelled else SEND_STATUS.get(send.status, str(send.status))


@router.get("/ui/", response_class=HTMLResponse)
def dashboard(request: Request, ui: UiDep) -> HTMLResponse:
    """The first page after sign-in: is the audience healthy, and what happened lately."""
    repo = UiRepository(ui.session, ui.account.id)
    counts = repo.status_counts()
    audience = [(status, counts.get(status, 0)) for status in STATUSES]
    sends = repo.recent_sends()
    stats = stats_for(ui.session, [s.id for s in sends])
    activity = repo.daily_activity(CHART_DAYS, today=utcnow().date())
    chart = {
        "type": "line",
        "labels": [d[5:] for d in activity["labels"]],
        "series": [
            {"label": "Sent", "data": activity["sent"]},
            {"label": "Opens", "data": activity["opens"]},
            {"label": "Bounces", "data": activity["bounces"]},
            {"label": "Unsubscribes", "data": activity["unsubscribes"]},
        ],
    }
    totals = {k: sum(activity[k]) for k in ("sent", "opens", "bounces", "unsubscribes")}
    return render(
        request,
        "dashboard.html",
        title="Dashboard",
        audience=audience,
        audience_total=sum(counts.values()),
        sends=[(s, stats[s.id], send_status(s)) for s in sends],
        chart=chart,
        totals=totals,
        days=CHART_DAYS,
    )
