"""Fuzz tests run on SQLite only: they prove parsing and validation, which do not depend on the database,
and running them twice would double their CPU for nothing (the rest of the suite covers PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent
_SKIP = pytest.mark.skip(reason="fuzzing runs on SQLite only: input handling is database-independent")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("db_url") != "postgresql":
            continue
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(_SKIP)
