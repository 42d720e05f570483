"""Alembic environment: the connection is handed over in code (see ``ledger.migrate``)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    version_table=context.config.attributes.get("version_table", "emancipate_schema"),
)
with context.begin_transaction():
    context.run_migrations()
