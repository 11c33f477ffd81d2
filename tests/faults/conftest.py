"""Fault tests run on PostgreSQL only: they need concurrent workers, SKIP LOCKED and a server to restart."""

from __future__ import annotations

import os

import pytest

from herald.container import Container

PG_ONLY = (
    "fault tests are about PostgreSQL deployments (several `herald worker` processes, SKIP LOCKED claims, "
    "a database server that restarts); SQLite's single-process embedded mode has none of these"
)
# This test restarts the machine's PostgreSQL, which would break tests running beside it in other processes.
ALONE_MARKER = "restarts_postgresql"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ALONE_MARKER}: restarts PostgreSQL; must run with no other test process")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, leave out the PostgreSQL restart: .ci/run runs it alone afterwards."""
    if not (hasattr(config, "workerinput") or os.environ.get("PYTEST_XDIST_WORKER")):
        return
    alone = [item for item in items if item.get_closest_marker(ALONE_MARKER)]
    if alone:
        config.hook.pytest_deselected(items=alone)
        items[:] = [item for item in items if not item.get_closest_marker(ALONE_MARKER)]


@pytest.fixture
def pg_container(db_url: str, request: pytest.FixtureRequest) -> Container:
    """The `container` fixture on its PostgreSQL parameter; its SQLite parameter is skipped with the reason."""
    if not db_url.startswith("postgresql"):
        pytest.skip(PG_ONLY)
    container: Container = request.getfixturevalue("container")
    return container
