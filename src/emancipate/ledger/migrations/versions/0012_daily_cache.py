"""The response cache in the daily summary, and the tokens a hit avoided.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

`daily_cache` counts, per UTC day, route, cache outcome (`requests.cache`: hit, miss,
bypass; a semantic hit is a `hit` with a similarity) and avoided vendor (`cache_vendor`, ''
for none), the requests, the semantic hits among them, the tokens and the cost the hits
avoided: the report's "vendor calls avoided by cache" (``ledger/summary.py``).
`requests.saved_tokens` is what a hit avoided: the cached answer's prompt + completion
tokens (NULL for everything but a hit; hits recorded before this revision have NULL too).

A database that already held cache rows is summarised at the next start
(``summary.backfill_if_needed``), as for 0008.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _key(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length), primary_key=True, server_default="")


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def upgrade() -> None:
    op.add_column("requests", sa.Column("saved_tokens", sa.Integer))
    op.create_table(
        "daily_cache", sa.Column("day", sa.String(10), primary_key=True), _key("route", 200),
        _key("cache", 8), _key("vendor", 200), _count("requests"), _count("semantic"),
        _count("saved_tokens"),
        sa.Column("saved_cost", sa.Float, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("daily_cache")
    op.drop_column("requests", "saved_tokens")
