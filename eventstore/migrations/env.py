"""Alembic environment: always run programmatically by :func:`eventstore.migrate.upgrade`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from eventstore.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
if connection.dialect.name in ("mysql", "mariadb") and not sa.inspect(connection).has_table(
    VERSION_TABLE
):
    # alembic creates its version table in the server's default storage engine, which may
    # be MyISAM: create it on InnoDB first, as alembic would (same column, same key).
    connection.exec_driver_sql(
        f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
        f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num)) ENGINE=InnoDB"
    )
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
