"""Opt-in rules: which message confirms a subscription to which list (seed 004's rules, enforced by the service)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from herald.errors import HeraldError, Invalid
from herald.optin.models import OptinRule
from herald.optin.service import OptinRuleService, RuleFilter
from herald.templates.models import Message
from herald.templates.service import MessageService
from herald.ui.campaigns.forms import FormDep
from herald.ui.campaigns.repository import CampaignPagesRepository
from herald.ui.deps import UiContext, UiDep, form_int, form_text, redirect, render, ui_router

router = ui_router()
CATCH_ALL = "catch-all"


def _page(
    request: Request,
    ui: UiContext,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    rule: OptinRule | None = None,
) -> Response:
    rules, _ = OptinRuleService(ui.session, ui.actor).search(RuleFilter())
    repo = CampaignPagesRepository(ui.session)
    lists = repo.lists(ui.actor.account_id)
    messages = ui.session.scalars(
        MessageService(ui.session, ui.actor).messages_query(include_deleted=True).order_by(Message.id)
    ).all()
    return render(
        request,
        "campaigns/optin_edit.html" if rule is not None else "campaigns/optin.html",
        status_code=422 if error else 200,
        title=f"Opt-in rule “{rule.name}”" if rule is not None else "Opt-in rules",
        rules=rules,
        rule=rule,
        lists={item.id: item for item in lists},
        list_choices=lists,
        messages={m.id: m for m in messages},
        optin_messages=[m for m in messages if m.customoptin and m.deleted_at is None],
        values=values or {"name": "", "list": "", "message_id": None, "paused": False},
        error=error,
    )


@router.get("/ui/optin", response_class=HTMLResponse)
def rule_list(request: Request, ui: UiDep) -> Response:
    """Every rule (per list and the catch-all) with its message and state, and a form for a new one."""
    return _page(request, ui)


@router.post("/ui/optin", response_class=HTMLResponse)
def create_rule(request: Request, ui: UiDep, form: FormDep) -> Response:
    """Create a rule; the service's refusals (a second rule for a list, a non-opt-in message) are shown."""
    values: dict[str, Any] = {
        "name": form_text(form, "name"),
        "list": form_text(form, "list"),
        "message_id": form_int(form, "message_id"),
        "paused": form.get("paused") == "1",
    }
    try:
        if not values["list"]:
            raise Invalid("list_id", "choose a list, or the catch-all for lists without their own rule")
        list_id = None if values["list"] == CATCH_ALL else form_int(form, "list")
        if list_id is None and values["list"] != CATCH_ALL:
            raise Invalid("list_id", "is not a list")
        rule = OptinRuleService(ui.session, ui.actor).create(
            list_id=list_id, message_id=values["message_id"], name=values["name"], paused=values["paused"]
        )
    except HeraldError as exc:
        ui.session.rollback()
        return _page(request, ui, values=values, error=str(exc))
    return redirect(request, "/ui/optin", flash=f"Created opt-in rule “{rule.name}”; its message is now locked.")


@router.get("/ui/optin/{rule_id}", response_class=HTMLResponse)
def edit_rule(request: Request, rule_id: int, ui: UiDep) -> Response:
    """A rule's form (its list never changes once set)."""
    rule = OptinRuleService(ui.session, ui.actor).get(rule_id)
    values = {"name": rule.name, "message_id": rule.message_id, "paused": rule.paused}
    return _page(request, ui, values=values, rule=rule)


@router.post("/ui/optin/{rule_id}", response_class=HTMLResponse)
def update_rule(request: Request, rule_id: int, ui: UiDep, form: FormDep) -> Response:
    """Change name, message or paused; refusals (not the owner, an unusable message) are shown."""
    svc = OptinRuleService(ui.session, ui.actor)
    rule = svc.get(rule_id)
    values: dict[str, Any] = {
        "name": form_text(form, "name"),
        "message_id": form_int(form, "message_id"),
        "paused": form.get("paused") == "1",
    }
    try:
        svc.update(rule_id, values)
    except HeraldError as exc:
        ui.session.rollback()
        return _page(request, ui, values=values, rule=svc.get(rule_id), error=str(exc))
    return redirect(request, "/ui/optin", flash=f"Saved opt-in rule “{rule.name}”.")


@router.post("/ui/optin/{rule_id}/delete", response_class=HTMLResponse)
def delete_rule(request: Request, rule_id: int, ui: UiDep) -> Response:
    """Delete a rule (only its creator or an admin may)."""
    svc = OptinRuleService(ui.session, ui.actor)
    svc.get(rule_id)  # another account's rule is a 404, not a refusal
    try:
        svc.delete(rule_id)
    except HeraldError as exc:
        ui.session.rollback()
        return redirect(request, "/ui/optin", flash=f"Refused: {exc}", level="error")
    return redirect(request, "/ui/optin", flash="Deleted the opt-in rule.")
