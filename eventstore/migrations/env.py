"""Alembic environment: always run programmatically by :func:`eventstore.migrate.upgrade`."""

from __future__ import annotations

from alembic import context

from eventstore.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # Only our own tables: the database may be Buildbot's, with its own alembic history.
    include_name=lambda name, type_, parent: (
        type_ != "table" or (name or "").startswith("mastertrail_")
    ),
)
with context.begin_transaction():
    context.run_migrations()
