"""The audience of a send as one SELECT: targets minus exclusions, joined to addresses, judged by eligibility.

The SELECT feeds a single `INSERT … SELECT` into `deliveries` (see SendRepository.materialise), so a
million recipients never pass through Python. Ineligible recipients get a `suppressed` delivery whose
`error` names the eligibility clause they failed: the ledger says who was not sent and why, and the
skipped counts are one GROUP BY away.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    LargeBinary,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.util import ClauseAdapter

from herald.consent.eligibility import eligible, skip_reason
from herald.consent.models import Address
from herald.contacts.models import Contact
from herald.db.engine import is_postgres
from herald.sends.models import Delivery

# PostgreSQL's sequence behind `deliveries.id` (a SERIAL column: {table}_{column}_seq), written as a regclass
# constant: passed as a string, nextval() resolved the name through the catalog once per row (text_regclass,
# 3 % of a 1 M launch's backend CPU in perf).
_ID_SEQUENCE: ColumnElement[Any] = literal_column(f"'{Delivery.__tablename__}_id_seq'::regclass")


def target_conditions(session: Session, account_id: int, targets: Sequence[dict[str, Any]]) -> ColumnElement[bool]:
    """OR of the contacts each `{"table", "id"}` target names (NotFound for an unknown type or segment)."""
    from herald.contacts.targets import target_condition

    conditions = [target_condition(session, account_id, str(t["table"]), int(t["id"])) for t in targets]
    return or_(*conditions) if conditions else literal(False)


def random_token() -> ColumnElement[str]:
    """A fresh 32-hex-character random token per row (SQLite, where a row's id is not known before insert)."""
    return func.lower(func.hex(func.randomblob(16)))


def ordered_token(delivery_id: ColumnElement[int], key: bytes) -> ColumnElement[str]:
    """A delivery's 32-hex token on PostgreSQL: its id (8 hex digits) and 96 bits of SHA-256(key, id).

    The id prefix makes tokens unique by construction (the primary key's uniqueness), so such tokens stay
    out of the partial unique index `uq_deliveries_token` (models.NOT_ID_TOKEN: ≈ 1.1 s of CPU per 1 M
    launched rows) and are found through the primary key (SendRepository.delivery_by_token); random tokens
    cost more still (a random leaf of that index per row: 4.4 s per 1 M, and `gen_random_uuid()` 2 s).
    The suffix keeps the token unguessable: `key` is 32 random bytes drawn per launch and never stored, so
    knowing one delivery's token tells nothing about another's (a secret-prefix SHA-256 over a fixed-length
    message: length extension cannot produce the value of another 4-byte id). Lookups compare the whole
    stored token, so every reader of `Delivery.token` is unchanged; the id it reveals is no secret (it only
    counts deliveries).
    """
    mac = func.sha256(literal(key, LargeBinary).op("||")(func.int4send(delivery_id)))
    return func.lpad(func.to_hex(delivery_id), 8, "0").op("||")(func.substr(func.encode(mac, "hex"), 1, 24))


def audience_rows(
    session: Session,
    *,
    account_id: int,
    send_id: int,
    recipients: Sequence[dict[str, Any]],
    exclusions: Sequence[dict[str, Any]],
    topic_id: int | None,
    list_id: int | None,
    require_optin: bool,
    now: datetime,
) -> Select[Any]:
    """Rows for `deliveries`, each column labelled with its name: one per address a target reaches.

    Contacts and addresses are both unique per (account, email), so a contact reached by two targets
    is still one row: the targets are OR-ed in one WHERE, never UNION-ed.
    """
    pg = is_postgres(session)
    where: list[ColumnElement[bool]] = [
        Contact.account_id == account_id,
        target_conditions(session, account_id, recipients),
    ]
    if exclusions:
        where.append(not_(target_conditions(session, account_id, exclusions)))
    rule = eligible(now, topic_id=topic_id, list_id=list_id, require_optin=require_optin)
    why = skip_reason(now, topic_id=topic_id, list_id=list_id, require_optin=require_optin)
    columns: list[ColumnElement[Any]] = [
        Address.id.label("address_id"),
        Contact.id.label("contact_id"),
        Address.email.label("email"),
        rule.label("ok"),
        # What skip_reason() reads of the address, so the outer SELECT can name the reason from these columns.
        *(c.label(f"reason_{c.name}") for c in _address_columns(why) if c.name != "id"),
    ]
    if pg:
        # The id is drawn here, once per row (the OFFSET 0 fence keeps nextval() from being re-evaluated),
        # so that the token can be derived from it.
        columns.append(cast(func.nextval(_ID_SEQUENCE), Integer).label("id"))
    inner = (
        select(*columns)
        .select_from(Contact)
        .join(Address, and_(Address.account_id == Contact.account_id, Address.email == Contact.email))
        .where(*where)
        # OFFSET 0 keeps the subquery from being flattened into the outer SELECT, which would evaluate the
        # rule (and its EXISTS probes) once per reference to `ok` instead of once per row.
        .offset(0)
        .subquery("audience")
    )
    ok = inner.c.ok.is_(True) if pg else inner.c.ok == 1
    # The reason is named only for the rows eligible() refused, inside the CASE below: for the eligible ones
    # (most of an audience) skip_reason() and its EXISTS probes are never evaluated. The same expression,
    # rewritten to read the audience subquery's columns instead of `addresses`.
    reason = ClauseAdapter(inner).traverse(why)
    ids: list[ColumnElement[Any]] = []
    if pg:
        ids = [inner.c.id.label("id")]
        token = ordered_token(inner.c.id, secrets.token_bytes(32))
    else:
        token = random_token()
    return select(
        *ids,
        literal(account_id, Integer).label("account_id"),
        literal(send_id, Integer).label("send_id"),
        inner.c.address_id,
        inner.c.contact_id,
        inner.c.email,
        case((ok, "queued"), else_="suppressed").label("status"),
        literal(0, Integer).label("attempts"),
        # Fresh deliveries are due at once: NULL is the claim's "fresh" condition, met by an index walk in id
        # order. With the launch time here, that query walked all 1 M rows of a launch to find none (0.57 s
        # per claim, EXPLAIN ANALYZE on PostgreSQL) before the "retry" query took them.
        null().label("next_attempt_at"),
        token.label("token"),
        # eligible() is the rule; skip_reason() only names the clause (a fallback keeps the ledger honest).
        case((ok, None), else_=func.coalesce(reason, "ineligible")).label("error"),
    )


def _address_columns(expr: ColumnElement[Any]) -> list[Column[Any]]:
    """The `addresses` columns an expression reads (in its correlated EXISTS probes too), in a stable order."""
    found = {c.name: c for c in visitors.iterate(expr) if isinstance(c, Column) and c.table is Address.__table__}
    return [found[name] for name in sorted(found)]


def audience_counts(
    session: Session,
    *,
    account_id: int,
    recipients: Sequence[dict[str, Any]],
    exclusions: Sequence[dict[str, Any]],
    topic_id: int | None,
    list_id: int | None,
    require_optin: bool,
    now: datetime,
) -> tuple[int, int, dict[str, int]]:
    """(reached, eligible, skipped by reason) the same targets would give at launch, for the editor's count.

    The same joins and the same `eligible()`/`skip_reason()` expressions as audience_rows, counted in the
    database instead of materialised, so the number shown before sending is the number launch produces.
    """
    if not recipients:
        return 0, 0, {}
    where: list[ColumnElement[bool]] = [
        Contact.account_id == account_id,
        target_conditions(session, account_id, recipients),
    ]
    if exclusions:
        where.append(not_(target_conditions(session, account_id, exclusions)))
    why = skip_reason(now, topic_id=topic_id, list_id=list_id, require_optin=require_optin)
    inner = (
        select(func.coalesce(why, "").label("reason"))
        .select_from(Contact)
        .join(Address, and_(Address.account_id == Contact.account_id, Address.email == Contact.email))
        .where(*where)
        # OFFSET 0 keeps the subquery from being flattened into the outer SELECT, which would evaluate the
        # rule (and its EXISTS probes) once per reference to `ok` instead of once per row.
        .offset(0)
        .subquery("audience")
    )
    stmt = select(inner.c.reason, func.count()).group_by(inner.c.reason)
    counts = {str(reason): int(n) for reason, n in session.execute(stmt)}
    reached = sum(counts.values())
    eligible_now = int(
        session.execute(
            select(func.count())
            .select_from(Contact)
            .join(Address, and_(Address.account_id == Contact.account_id, Address.email == Contact.email))
            .where(*where, eligible(now, topic_id=topic_id, list_id=list_id, require_optin=require_optin))
        ).scalar_one()
    )
    skipped = {reason or "ineligible": n for reason, n in counts.items() if reason}
    return reached, eligible_now, skipped
