"""The response cache: its entries, and what each request's cache lookup gave.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

`cache_entries` holds answers of routes with `cache:` (when Redis is not configured): the
key is a hash of the canonical request, the policy's outcome and the caller's cache scope;
the answer is stored only when the guard found nothing in the request or the answer.
`requests.cache` is `hit`, `miss` or `bypass` (NULL: the route has no cache); a hit records
the vendor whose call it avoided and that call's cost (`cache_vendor`, `saved_cost`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_cache_entries_expires_at", "cache_entries", ["expires_at"])
    op.add_column("requests", sa.Column("cache", sa.String(8)))
    op.add_column("requests", sa.Column("cache_vendor", sa.String(200)))
    op.add_column("requests", sa.Column("saved_cost", sa.Float))


def downgrade() -> None:
    op.drop_column("requests", "saved_cost")
    op.drop_column("requests", "cache_vendor")
    op.drop_column("requests", "cache")
    op.drop_index("ix_cache_entries_expires_at", "cache_entries")
    op.drop_table("cache_entries")
