"""Admin identities with roles, and teams with their own limits: `admins`, `teams`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

`admins`: keys created by `emancipate admin create`, each with a role (viewer, operator,
admin), stored as a hash exactly like virtual keys. `teams`: a team's allowed models, budgets
and rate limits, which every key whose `keys.team` names it inherits (issue 15). Existing keys
keep their team label; it becomes a limit only once a team of that name is created.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "teams",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("allowed_models", sa.Text),  # JSON list; NULL: every route
        sa.Column("budget_day", sa.Float),
        sa.Column("budget_month", sa.Float),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # A team's spend is read from the ledger once per process and day (as a key's is).
    op.create_index("ix_requests_team_day", "requests", ["team", "day"])


def downgrade() -> None:
    op.drop_index("ix_requests_team_day", "requests")
    op.drop_table("teams")
    op.drop_table("admins")
