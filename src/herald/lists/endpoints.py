"""Native API: categories, lists and list subscriptions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from herald.api.deps import ActorDep, ContainerDep, SessionDep
from herald.api.pagination import check_limit, decode_cursor, encode_cursor, page
from herald.lists.models import Category, MailingList, Subscription
from herald.lists.schemas import (
    CategoryIn,
    CategoryOut,
    CategoryPage,
    ListIn,
    ListOut,
    ListPage,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
)
from herald.lists.service import ACTIVE, UNCONFIRMED, ListService

router = APIRouter(tags=["lists"])

Limit = Annotated[int, Query()]
Cursor = Annotated[str | None, Query()]


def _category_out(c: Category) -> dict[str, Any]:
    return CategoryOut(id=c.id, name=c.name, created_at=c.created_at).model_dump()


def _list_out(m: MailingList) -> dict[str, Any]:
    return ListOut(
        id=m.id, name=m.name, category_id=m.category_id, double_opt_in=m.double_opt_in, created_at=m.created_at
    ).model_dump()


def _subscription_out(sub: Subscription, email: str) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        list_id=sub.list_id,
        email=email,
        status=sub.status,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
    )


@router.post("/categories", response_model=CategoryOut, status_code=201, summary="Create a category")
def create_category(body: CategoryIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """A folder to keep lists in."""
    return _category_out(ListService(session, actor).create_category(body.name))


@router.get("/categories", response_model=CategoryPage, summary="List categories")
def list_categories(session: SessionDep, actor: ActorDep, limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """The account's categories by id."""
    svc = ListService(session, actor)
    return page(session, svc.categories_query(), Category.id, limit=limit, cursor=cursor, render=_category_out)


@router.post("/lists", response_model=ListOut, status_code=201, summary="Create a list")
def create_list(body: ListIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """A list addresses subscribe to, optionally in a category and with double opt-in."""
    svc = ListService(session, actor)
    return _list_out(svc.create_list(body.name, category_id=body.category_id, double_opt_in=body.double_opt_in))


@router.get("/lists", response_model=ListPage, summary="List lists")
def list_lists(
    session: SessionDep,
    actor: ActorDep,
    limit: Limit = 100,
    cursor: Cursor = None,
    category_id: Annotated[int | None, Query()] = None,
) -> dict[str, Any]:
    """The account's lists by id, optionally only those of one category."""
    svc = ListService(session, actor)
    return page(
        session, svc.lists_query(category_id=category_id), MailingList.id, limit=limit, cursor=cursor, render=_list_out
    )


@router.post(
    "/lists/{list_id}/subscriptions", response_model=SubscriptionOut, status_code=201, summary="Subscribe an address"
)
def subscribe(
    list_id: int, body: SubscriptionIn, session: SessionDep, actor: ActorDep, container: ContainerDep
) -> SubscriptionOut:
    """Put an address on a list; opted-out, bounced and spam-reported addresses are refused (409)."""
    svc = ListService(session, actor, hash_key=container.hash_key)
    status: str = body.status or (UNCONFIRMED if svc.get_list(list_id).double_opt_in else ACTIVE)
    sub = svc.subscribe(list_id, body.email, status=status, reason=body.reason)
    return _subscription_out(sub, svc.consent.get_by_id(sub.address_id).email)


@router.get("/lists/{list_id}/subscriptions", response_model=SubscriptionPage, summary="List a list's subscriptions")
def list_subscriptions(
    list_id: int,
    session: SessionDep,
    actor: ActorDep,
    limit: Limit = 100,
    cursor: Cursor = None,
    status: Annotated[Literal["unconfirmed", "active", "unsubscribed"] | None, Query()] = None,
) -> SubscriptionPage:
    """Who is on the list, by subscription id, optionally with one status."""
    svc = ListService(session, actor)
    limit = check_limit(limit)
    rows = svc.subscriptions(list_id, status=status, after_id=decode_cursor(cursor), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return SubscriptionPage(
        items=[_subscription_out(sub, email) for sub, email in rows],
        next_cursor=encode_cursor(rows[-1][0].id) if more and rows else None,
    )
