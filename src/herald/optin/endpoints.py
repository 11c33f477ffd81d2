"""Native API: opt-in automation rules (`/optin-automations`), as Sign-Up.to's optinAutomation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from herald.api.deps import ActorDep, SessionDep
from herald.api.pagination import check_limit, decode_cursor, encode_cursor
from herald.errors import Invalid
from herald.optin.schemas import RuleIn, RuleOut, RulePage, RulePatch
from herald.optin.service import OptinRuleService, RuleFilter, rule_dict

router = APIRouter(tags=["optin-automations"])


@router.post("/optin-automations", status_code=201, response_model=RuleOut, summary="Create an opt-in rule")
def create_rule(body: RuleIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """A rule choosing the opt-in email of one list (or, with list_id null, of every other list)."""
    rule = OptinRuleService(session, actor).create(
        list_id=body.list_id, message_id=body.message_id, name=body.name, paused=body.paused, summary=body.summary
    )
    return rule_dict(rule)


@router.get("/optin-automations", response_model=RulePage, summary="List opt-in rules")
def list_rules(
    session: SessionDep,
    actor: ActorDep,
    limit: Annotated[int, Query()] = 100,
    cursor: Annotated[str | None, Query()] = None,
    list_id: Annotated[int | None, Query()] = None,
    paused: Annotated[bool | None, Query()] = None,
    user_id: Annotated[int | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The account's rules by id, optionally filtered."""
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    svc = OptinRuleService(session, actor)
    filters = RuleFilter(paused=paused, user_id=user_id, name=name)
    if list_id is not None:
        filters = RuleFilter(list_id=list_id, paused=paused, user_id=user_id, name=name)
    rows, _ = svc.search(filters, count=limit + 1, after_id=after)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [rule_dict(r) for r in rows], "next_cursor": encode_cursor(rows[-1].id) if more else None}


@router.get("/optin-automations/{rule_id}", response_model=RuleOut, summary="One opt-in rule")
def get_rule(rule_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """One rule of the account."""
    return rule_dict(OptinRuleService(session, actor).get(rule_id))


@router.patch("/optin-automations/{rule_id}", response_model=RuleOut, summary="Change an opt-in rule")
def patch_rule(rule_id: int, body: RulePatch, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Change name, message, paused or summary (creator or admin only; list_id is fixed)."""
    changes = body.model_dump(exclude_unset=True)
    for field in ("message_id", "name", "paused"):
        if field in changes and changes[field] is None:
            raise Invalid(field, "must not be null")
    return rule_dict(OptinRuleService(session, actor).update(rule_id, changes))


@router.delete("/optin-automations/{rule_id}", status_code=204, summary="Delete an opt-in rule")
def delete_rule(rule_id: int, session: SessionDep, actor: ActorDep) -> Response:
    """Remove a rule (creator or admin only); its message stays as it is."""
    OptinRuleService(session, actor).delete(rule_id)
    return Response(status_code=204)
