"""Engine and session factory for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool, QueuePool

# Set by `read_only()`: SQLite transactions begun meanwhile take no write lock (see make_engine).
_READ_ONLY: ContextVar[bool] = ContextVar("herald_read_only", default=False)
SQLITE_POOL_SIZE = 40


@contextmanager
def read_only() -> Iterator[None]:
    """Mark the transactions begun inside as reads, so on SQLite they do not queue for the write lock.

    Only for work that never writes: a deferred SQLite transaction that tries to write after another
    writer committed fails at once instead of waiting (PostgreSQL ignores the mark).
    """
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use the psycopg 3 driver for them."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout so CLI and server share the file."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        memory = not parsed.database or parsed.database == ":memory:"
        # A pool of file connections: reconnecting and re-running the PRAGMAs cost ~2 ms per transaction.
        # pysqlite connections may cross threads (check_same_thread=False); the pool hands each to one at a time.
        # As many kept connections as the server's thread pool has threads (anyio's default limit is 40): with
        # fewer, every overflow connection was opened, PRAGMA'd and closed again per request under load.
        pool: dict[str, Any] = (
            {"poolclass": NullPool}
            if memory
            else {"poolclass": QueuePool, "pool_size": max(pool_size, SQLITE_POOL_SIZE), "max_overflow": 20}
        )
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let pysqlite leave BEGIN to us, so every transaction takes the write lock up front and
            # concurrent writers wait on busy_timeout instead of failing on a lock upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if _READ_ONLY.get() else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (edges serialise after committing)."""
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine_or_session: Engine | Session) -> bool:
    """True on PostgreSQL: some statements (SKIP LOCKED) exist only there."""
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"
