"""Initial ledger and keys schema.

Revision ID: 0001
Revises:
Create Date: 2025-10-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("team", sa.String(200)),
        sa.Column("route", sa.String(200)),
        sa.Column("target", sa.String(400)),
        sa.Column("provider", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("vendor", sa.String(200)),
        sa.Column("ownership", sa.String(16)),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("router_score", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_requests_created_at", "requests", ["created_at"])
    op.create_table(
        "attempts",
        sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("vendor", sa.String(200)),
        sa.Column("ownership", sa.String(16)),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("error", sa.String(64)),
    )
    op.create_table(
        "decisions",
        sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(200)),
        sa.Column("cls", sa.String(64)),
        sa.Column("detector", sa.String(200)),
        sa.Column("target", sa.String(400)),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "findings",
        sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("cls", sa.String(64), nullable=False),
        sa.Column("detector", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(200)),
        sa.Column("message_index", sa.Integer, nullable=False),
    )
    op.create_table(
        "keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("team", sa.String(200)),
        sa.Column("allowed_models", sa.Text),
        sa.Column("budget_day", sa.Float),
        sa.Column("budget_month", sa.Float),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("rotated_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ux_keys_secret_hash", "keys", ["secret_hash"], unique=True)


def downgrade() -> None:
    op.drop_table("findings")
    op.drop_table("decisions")
    op.drop_table("attempts")
    op.drop_index("ix_requests_created_at", table_name="requests")
    op.drop_table("requests")
    op.drop_index("ux_keys_secret_hash", table_name="keys")
    op.drop_table("keys")
