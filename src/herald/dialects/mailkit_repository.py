"""The one read Mailkit getstatus needs, run as a single statement on raw driver connections.

getstatus is the hottest call any dialect answers (issue 8: ≥ 1,500 req/s). Through a Session it cost three
statements, a BEGIN and a COMMIT and SQLAlchemy's per-execution setup (≈ 1 ms of GIL time per call); here
one statement joins the credential (with its account and user, for the same refusals as
`AccountService.verify_mailkit`), the address within the credential's account and the account's enabled
topics with the address's unsubscribe flag, and runs on a driver connection kept per thread in autocommit:
a single SELECT is its own consistent snapshot on SQLite (WAL) and PostgreSQL, so no transaction is needed.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import ClauseElement, Engine, and_, bindparam, event, exists
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from herald.accounts.models import Credential
from herald.accounts.repository import credential_check
from herald.accounts.service import MAILKIT
from herald.consent.models import Address, Topic, TopicUnsubscribe

# How long an embedded read waits for a lock before failing (see StatusReads._connection).
EMBEDDED_BUSY_MS = 200

# Positions of the columns in a row of StatusReads.read.
CREDENTIAL_ID, ACCOUNT_ID, SECRET_HASH, ACCOUNT_EXISTS, USER_OK = 0, 1, 2, 3, 4
ADDRESS_ID, EMAIL, STATUS, OPTED_OUT_UNTIL, STATUS_BEFORE_OPTOUT = 5, 6, 7, 8, 9
TOPIC_ID, TOPIC_NAME, TOPIC_DESCRIPTION, TOPIC_UNSUBSCRIBED = 10, 11, 12, 13


@cache
def _statement(by_email: bool) -> ClauseElement:
    # The address only within the credential's account (tenant isolation), by normalised email or id.
    key = Address.email if by_email else Address.id
    address_on = and_(Address.account_id == Credential.account_id, key == bindparam("key"))
    unsubscribed = exists().where(TopicUnsubscribe.address_id == Address.id, TopicUnsubscribe.topic_id == Topic.id)
    return (
        credential_check()
        .add_columns(
            Address.id,
            Address.email,
            Address.status,
            Address.opted_out_until,
            Address.status_before_optout,
            Topic.id,
            Topic.name,
            Topic.description,
            unsubscribed,
        )
        .outerjoin(Address, address_on)
        # Topics only when the address was found: an unknown address answers one row, not one per topic.
        .outerjoin(Topic, and_(Topic.account_id == Address.account_id, Topic.enabled.is_(True)))
        .order_by(Topic.id)
    )


class _Compiled:
    """A statement compiled once for one dialect, with its parameters in the driver's order."""

    def __init__(self, by_email: bool, dialect: Dialect) -> None:
        compiled = _statement(by_email).compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self.names = list(compiled.positiontup or []) if compiled.positional else None

    def params(self, values: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The parameters as the driver wants them (a tuple for qmark, the mapping for named styles)."""
        return tuple(values[n] for n in self.names) if self.names is not None else values


def as_utc(value: datetime | str | None) -> datetime | None:
    """A timestamp as read by the driver (SQLite gives naive-UTC text, PostgreSQL aware), made aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StatusReads:
    """getstatus's read for one engine; each calling thread keeps one autocommit driver connection.

    The connections are taken from the engine (its connect hooks, e.g. SQLite's PRAGMAs, have run) and then
    detached from its pool, since they are held for the thread's lifetime; they are closed when the engine
    is disposed or this reader is collected.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # An embedded (SQLite) read never waits on a network round trip, so callers may run it on the event loop.
        self.embedded = engine.dialect.name == "sqlite"
        self._by_email = _Compiled(True, engine.dialect)
        self._by_id = _Compiled(False, engine.dialect)
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._opened, self._lock)
        opened, lock = self._opened, self._lock  # not self: the engine must not keep this reader alive
        event.listen(engine, "engine_disposed", lambda _engine: _close_all(opened, lock))

    def read(self, key_id: str, *, email: str | None = None, address_id: int | None = None) -> list[tuple[Any, ...]]:
        """Rows for a Mailkit key id and an address (by email when given, else by id); [] for an unknown key.

        One row per enabled topic of the account (ordered by id), or one row with null topic columns; the
        address columns are null when the account has no such address.
        """
        compiled = self._by_email if email is not None else self._by_id
        params = compiled.params({"kind": MAILKIT, "key_id": key_id, "key": email if email is not None else address_id})
        try:
            return self._execute(compiled.sql, params)
        except self.engine.dialect.loaded_dbapi.Error:
            # A connection the database dropped (restart, idle timeout): discard it and retry once on a new one.
            self._discard()
            return self._execute(compiled.sql, params)

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
        cursor = self._connection().cursor()
        try:
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _connection(self) -> Any:
        kept = getattr(self._local, "conn", None)
        if kept is not None and kept in self._opened:
            return kept
        fairy = self.engine.raw_connection()
        conn: Any = fairy.dbapi_connection
        fairy.detach()
        if self.engine.dialect.name == "postgresql":
            conn.autocommit = True
        if self.embedded:
            # A WAL read waits for no writer; only a connection holding the file in exclusive locking mode (a
            # tool, never Herald) can make it wait. On the event loop that wait must stay short, not the
            # engine's 30 s: the read fails (and is retried once) instead of stalling every request.
            conn.execute(f"PRAGMA busy_timeout={EMBEDDED_BUSY_MS}")
        with self._lock:
            self._opened.append(conn)
        self._local.conn = conn
        return conn

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        with self._lock:
            if conn is None or conn not in self._opened:
                return
            self._opened.remove(conn)
        with suppress(Exception):
            conn.close()


def _close_all(connections: list[Any], lock: threading.Lock) -> None:
    with lock:
        closing = list(connections)
        connections.clear()
    for conn in closing:
        with suppress(Exception):  # a connection the server already dropped
            conn.close()
