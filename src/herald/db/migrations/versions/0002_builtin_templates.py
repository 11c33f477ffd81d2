"""Built-in design templates (ids 1-3).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from herald.db.base import utcnow
from herald.templates.builtin import builtin_templates

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    templates = sa.table(
        "templates",
        sa.column("id", sa.Integer),
        sa.column("account_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("preview_image", sa.String),
        sa.column("html", sa.Text),
        sa.column("json", sa.Text),
        sa.column("is_blank", sa.Boolean),
        sa.column("created_at", sa.DateTime),
        sa.column("updated_at", sa.DateTime),
    )
    now = utcnow().replace(tzinfo=None)
    op.bulk_insert(
        templates,
        [{**row, "account_id": None, "created_at": None, "updated_at": now} for row in builtin_templates()],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('templates', 'id'), (SELECT max(id) FROM templates))")


def downgrade() -> None:
    op.execute("DELETE FROM templates WHERE account_id IS NULL")
