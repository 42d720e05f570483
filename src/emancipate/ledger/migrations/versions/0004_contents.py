"""Message contents, only for operators who turn on `ledger.log_content`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

One row per request when content logging is on; values the guard detected are masked
before they are queued, so a detected secret is never stored even here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contents",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("messages", sa.Text, nullable=False),
        sa.Column("answer", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("contents")
