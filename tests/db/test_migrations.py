"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from herald.container import Container
from herald.db.models import Base


def test_migrated_schema_matches_models(container: Container) -> None:
    with container.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree; run scripts/regen_migration.py: {diff}"


def test_builtin_templates_seeded(container: Container) -> None:
    with container.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, name FROM templates ORDER BY id").fetchall()
    assert [tuple(r) for r in rows][:1] == [(1, "Blank Template")]
    assert len(rows) >= 3
