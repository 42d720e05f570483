"""What each shadow evaluation spent: the shadow answer's and the judge's tokens and cost.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Shadow and judge calls are not request rows (they would skew the traffic shares), so without
these columns their spend at a vendor was invisible. Existing verdicts read as zero spend and
no vendor: what they cost was not recorded.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("shadow_vendor", sa.String(100), None),
    ("shadow_tokens", sa.Integer, "0"),
    ("shadow_cost", sa.Float, "0"),
    ("judge_target", sa.String(400), None),
    ("judge_vendor", sa.String(100), None),
    ("judge_tokens", sa.Integer, "0"),
    ("judge_cost", sa.Float, "0"),
)


def upgrade() -> None:
    for name, type_, default in COLUMNS:
        op.add_column("shadow_verdicts", sa.Column(name, type_, nullable=default is None,
                                                   server_default=default))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as in 0002.
    for name, _type, _default in reversed(COLUMNS):
        op.drop_column("shadow_verdicts", name)
