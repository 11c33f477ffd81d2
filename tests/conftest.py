"""Shared fixtures: the suite runs on SQLite and PostgreSQL alike (the `db_url` fixture is parametrised).

PostgreSQL is the machine's service at 127.0.0.1:5432 (override with HERALD_TEST_PG_URL). Outside CI a
missing PostgreSQL skips its half loudly; with CI=true it fails.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from herald.accounts.service import AccountService
from herald.app import create_app
from herald.container import Container
from herald.db.migrate import upgrade
from herald.db.models import Base
from herald.settings import Settings
from herald.templates.builtin import builtin_templates

PG_ADMIN_URL = os.environ.get("HERALD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Rows that migrations seed and tests must keep.
SEEDED_TABLES = {"templates", "alembic_version"}


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means "not available"; say why
        return str(exc)


_PG_ERROR = _pg_available()


def pytest_report_header(config: pytest.Config) -> str:
    if _PG_ERROR:
        return f"!!! PostgreSQL NOT AVAILABLE ({_PG_ERROR.strip()}): PostgreSQL tests {'FAIL' if IN_CI else 'SKIPPED'}"
    return "databases: SQLite and PostgreSQL"


def _worker_id(request: pytest.FixtureRequest) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


def _fresh_pg_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of each kind, one per test process."""
    if request.param == "postgresql":
        if _PG_ERROR:
            message = f"PostgreSQL is not available: {_PG_ERROR}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip("!!! " + message)
        name = f"herald_test_{_worker_id(request)}_{os.getpid()}"
        url = _fresh_pg_database(name)
        yield url
        try:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/herald.db"


@pytest.fixture(scope="session")
def _migrated_urls() -> set[str]:
    return set()


def _clean(container: Container) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in SEEDED_TABLES]
    with container.engine.begin() as conn:
        if container.engine.dialect.name == "postgresql":
            # CASCADE empties templates too (it references accounts): put the built-in ones back.
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
            conn.execute(text("DELETE FROM templates"))
            conn.execute(
                Base.metadata.tables["templates"].insert(), [{**row, "account_id": None} for row in builtin_templates()]
            )
            # RESTART IDENTITY reset the sequence to 1: move it past the built-in ids again.
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('templates', 'id'), (SELECT max(id) FROM templates))")
            )
        else:
            for name in reversed(tables):
                conn.execute(text(f"DELETE FROM {name}"))
            conn.execute(text("DELETE FROM templates WHERE account_id IS NOT NULL"))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own data folder and outbox, a fixed secret."""
    return Settings(
        database_url=db_url,
        smtp_url=f"maildir:{tmp_path}/outbox",
        data_dir=tmp_path / "data",
        secret_key="test-secret-key",
        base_url="http://herald.test",
        worker_poll_seconds=0.05,
    )


@pytest.fixture
def container(settings: Settings, _migrated_urls: set[str]) -> Iterator[Container]:
    """A container on a clean, migrated database."""
    c = Container.build(settings)
    if settings.database_url not in _migrated_urls:
        upgrade(c.engine)
        _migrated_urls.add(settings.database_url)
    _clean(c)
    yield c
    c.engine.dispose()


@pytest.fixture
def app(container: Container) -> Any:
    """The whole ASGI app (no worker)."""
    return create_app(container)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """A client speaking HTTP to the ASGI app."""
    with TestClient(app, base_url="http://herald.test") as c:
        yield c


def make_account(container: Container, name: str = "acme") -> dict[str, Any]:
    """Create an account and return its credentials as `herald account create --json` prints them."""
    with container.transaction() as session:
        return AccountService(session, container.cipher).create_account(name)


def make_user(container: Container, account_id: int, name: str = "user", *, admin: bool = False) -> dict[str, Any]:
    """Create a user and return its credentials."""
    with container.transaction() as session:
        return AccountService(session, container.cipher).create_user(account_id, name, is_admin=admin)


@pytest.fixture
def account(container: Container) -> dict[str, Any]:
    """An account with its admin user's credentials."""
    return make_account(container)


@pytest.fixture
def other_account(container: Container) -> dict[str, Any]:
    """A second tenant, to prove isolation."""
    return make_account(container, "other")


def auth(creds: dict[str, Any]) -> dict[str, str]:
    """Native API headers for a credentials dict."""
    return {"Authorization": f"Bearer {creds['api_token']}"}


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """Herald under a real uvicorn server on loopback, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live_server(app: Any) -> Iterator[LiveServer]:
    """Herald served over real HTTP on a loopback port."""
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def smtp_sink() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on loopback; see tests/smtp_sink.py."""
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_settings(settings: Settings, smtp_sink: Any) -> Settings:
    """Settings whose HERALD_SMTP_URL points at the test sink."""
    return settings.model_copy(update={"smtp_url": smtp_sink.url})
