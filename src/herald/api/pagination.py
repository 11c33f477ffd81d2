"""Cursor pagination for native list endpoints: `?limit=&cursor=`, answered as {"items", "next_cursor"}."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from herald.errors import Invalid

MAX_LIMIT = 500


def encode_cursor(last_id: int) -> str:
    """An opaque cursor after the row with this id."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id a cursor points after (0 for the first page); Invalid('cursor') for garbage."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "id":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor", "is not a cursor this API returned") from None


def check_limit(limit: int) -> int:
    """A page size within bounds."""
    if limit < 1 or limit > MAX_LIMIT:
        raise Invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def page(
    session: Session,
    stmt: Select[Any],
    id_column: Any,
    *,
    limit: int,
    cursor: str | None,
    render: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """Run a keyset-paged select (ordered by id) and render one page."""
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    rows: Sequence[Any] = session.scalars(stmt.where(id_column > after).order_by(id_column).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [render(r) for r in rows],
        "next_cursor": encode_cursor(rows[-1].id) if more and rows else None,
    }
