"""Daily summary tables: the independence report's figures per UTC day, kept incrementally.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

The ledger writer adds each batch's figures to these tables in the transaction that inserts
its requests (``ledger/summary.py``), so that a year's report reads a few thousand summary
rows instead of a million requests, and so that days deleted by `ledger.retention_days`
keep their figures. Key columns are NOT NULL ('' stands for NULL; bucket -1 for no router
score) so that the primary keys can be upsert targets on SQLite and PostgreSQL.

Existing rows are summarised at the first start after this migration
(``summary.backfill_if_needed``, with the code of that version), not here: a migration that
imported the ledger's code would break once that code moved on.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _day() -> sa.Column:
    return sa.Column("day", sa.String(10), primary_key=True)  # UTC 'YYYY-MM-DD'


def _key(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length), primary_key=True, server_default="")


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def _sum(name: str) -> sa.Column:
    return sa.Column(name, sa.Float, nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "daily_traffic", _day(), _key("vendor", 200), _key("ownership", 16), _key("target", 400),
        _count("requests"), _count("errors"), _count("prompt_tokens"),
        _count("completion_tokens"), _sum("cost"), _count("failovers_survived"),
        _count("multi_attempt"),
    )
    op.create_table(
        "daily_routing", _day(), _key("route", 200), _key("action", 32),
        sa.Column("bucket", sa.Integer, primary_key=True, server_default="-1"),
        _count("requests"), _sum("score_sum"), _count("served_in_house"),
    )
    op.create_table(
        "daily_findings", _day(), _key("cls", 64), _key("domain", 200), _key("vendor", 200),
        _count("findings"), _count("requests"),
    )
    op.create_table(
        "daily_protection", _day(), _key("target", 400), _key("rule", 200), _key("cls", 64),
        _key("action", 32), _count("decisions"), _count("requests"),
    )
    op.create_table(
        "daily_withheld", _day(), _key("cls", 64), _key("action", 32), _key("targets_key", 40),
        sa.Column("targets", sa.Text, nullable=False), _count("requests"),
    )
    op.create_table(
        "daily_failovers", _day(), _key("target", 400), _key("vendor", 200),
        _key("outcome", 64), _count("attempts"), _count("requests"),
    )
    op.create_table(
        "daily_shadow", _day(), _key("route", 200), _key("shadow_vendor", 100),
        _key("judge_vendor", 100), _count("verdicts"), _count("errors"), _count("inhouse_ok"),
        _count("shadow_tokens"), _sum("shadow_cost"), _count("judge_tokens"),
        _sum("judge_cost"),
    )


def downgrade() -> None:
    for name in ("daily_shadow", "daily_failovers", "daily_withheld", "daily_protection",
                 "daily_findings", "daily_routing", "daily_traffic"):
        op.drop_table(name)
