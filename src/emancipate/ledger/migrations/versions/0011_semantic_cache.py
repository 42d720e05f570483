"""The semantic cache: each entry's partition and unit vector, and a hit's similarity.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

A route with `cache: {semantic: …}` stores, with each entry, its `partition` (a hash of the
whole cache key except the last user message's text: route, scope, policy outcome, earlier
messages, sampling parameters, tools, response format) and `vector`, the in-house embedding
of that last user message (float32, unit length). A semantic lookup compares a request only
with the entries of its own partition. `requests.cache_similarity` is the cosine similarity
of a semantic hit (NULL for an exact hit and for everything else).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cache_entries") as batch:
        batch.add_column(sa.Column("partition", sa.String(64)))
        batch.add_column(sa.Column("vector", sa.LargeBinary))
    op.create_index("ix_cache_entries_partition", "cache_entries", ["partition", "expires_at"])
    op.add_column("requests", sa.Column("cache_similarity", sa.Float))


def downgrade() -> None:
    op.drop_column("requests", "cache_similarity")
    op.drop_index("ix_cache_entries_partition", "cache_entries")
    with op.batch_alter_table("cache_entries") as batch:
        batch.drop_column("vector")
        batch.drop_column("partition")
