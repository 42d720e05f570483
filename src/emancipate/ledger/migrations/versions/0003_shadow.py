"""Shadow verdicts: one row per shadowed request, the judge's verdict on the two answers.

Revision ID: 0003
Revises: 0002
Create Date: 2025-10-03

`request_id` is the request's id but carries no foreign key: the verdict is written by the
shadow stage, which may finish before the ledger's batch writer has committed the request.
`prompt` is only filled when `shadow.keep_prompts` is on and the guard found nothing in the
request; messages are never stored otherwise.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_verdicts",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("primary_target", sa.String(400), nullable=False),
        sa.Column("primary_ownership", sa.String(16), nullable=False),
        sa.Column("shadow_target", sa.String(400), nullable=False),
        sa.Column("shadow_ownership", sa.String(16), nullable=False),
        sa.Column("judge", sa.String(200), nullable=False),
        sa.Column("inhouse_ok", sa.Boolean, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("router_score", sa.Float),
        sa.Column("prompt", sa.Text),
        sa.Column("latency_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_shadow_verdicts_day", "shadow_verdicts", ["day"])
    op.create_index("ix_shadow_verdicts_route_day", "shadow_verdicts", ["route", "day"])


def downgrade() -> None:
    op.drop_index("ix_shadow_verdicts_route_day", table_name="shadow_verdicts")
    op.drop_index("ix_shadow_verdicts_day", table_name="shadow_verdicts")
    op.drop_table("shadow_verdicts")
