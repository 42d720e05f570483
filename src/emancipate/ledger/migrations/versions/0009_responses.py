"""Stored Responses (`POST /v1/responses` with `store`), for `previous_response_id`, GET, DELETE.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

One row per stored response, readable only by the key that created it (`key_id`). `response`
is the Response object as the client received it and `context` the conversation a
continuation prepends (chat messages, the answer included), both JSON with every value the
guard detects masked, as `ledger.log_content` stores contents: a detected secret is never
stored here either.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("previous_id", sa.String(64)),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
    )
    op.create_index("ix_responses_created_at", "responses", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_created_at", "responses")
    op.drop_table("responses")
