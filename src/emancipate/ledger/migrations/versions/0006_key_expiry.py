"""Virtual keys can expire: `keys.expires_at`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

NULL (every existing key) means the key never expires. The gateway refuses a key from that
instant on, as it refuses a revoked one (issue 17 §5).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("keys", sa.Column("expires_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as in 0002.
    op.drop_column("keys", "expires_at")
