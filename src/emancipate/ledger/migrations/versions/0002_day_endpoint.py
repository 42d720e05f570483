"""Requests get a UTC `day` (portable per-day grouping, budget sums) and their `endpoint`.

Revision ID: 0002
Revises: 0001
Create Date: 2025-10-02

Existing rows are backfilled from `created_at`; budgets sum a key's cost by (key_id, day),
hence the index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("day", sa.String(10)))
    op.add_column(
        "requests",
        sa.Column("endpoint", sa.String(32), nullable=False, server_default="chat.completions"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE requests SET day = to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        )
    else:  # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff'
        op.execute("UPDATE requests SET day = substr(created_at, 1, 10)")
    op.create_index("ix_requests_day", "requests", ["day"])
    op.create_index("ix_requests_key_day", "requests", ["key_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_requests_key_day", table_name="requests")
    op.drop_index("ix_requests_day", table_name="requests")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy would drop and recreate
    # `requests`, and with foreign keys on that deletes every attempt, decision and finding.
    op.drop_column("requests", "endpoint")
    op.drop_column("requests", "day")
