"""A schema that every reflection reads without a warning, on InnoDB throughout.

- SQLite: the time index of format 3 is on the expression ``recorded_at / 60000000``,
  which SQLAlchemy's reflection (so alembic's, and Buildbot's tests') skips with a
  warning. It moves to a ``VIRTUAL`` generated column ``recorded_minute`` of the same
  expression: the column is computed when read and stores nothing, the index holds the
  same 4-byte minute and position as before, and SQLite's planner seeks it for the reads
  that name the column (:data:`eventstore.reads.recorded_minute`).
- MariaDB: a table created while the server's default storage engine was not InnoDB
  (alembic's version table, created by alembic without an engine) is converted to
  InnoDB, which the log's transactions need.

Nothing else changes: every stored event, id and hash stays as it is. Each step can run
again, so an upgrade stopped half-way (MariaDB commits each DDL statement) is finished by
the next.

Revision ID: 0004_reflectable_schema
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_reflectable_schema"
down_revision = "0003"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"
INDEX = "mastertrail_events_recorded_at"
#: Microseconds in a minute, the key of SQLite's time index at this revision.
MINUTE = 60_000_000


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        columns = {c["name"] for c in sa.inspect(bind).get_columns(EVENTS)}
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
        if "recorded_minute" not in columns:
            op.execute(
                f"ALTER TABLE {EVENTS} ADD COLUMN recorded_minute INTEGER "
                f"GENERATED ALWAYS AS (recorded_at / {MINUTE}) VIRTUAL"
            )
        # Every SQLite index ends with the rowid, the position: this one orders by
        # (minute, position), as format 3's did.
        op.execute(f"CREATE INDEX {INDEX} ON {EVENTS} (recorded_minute)")
    elif dialect in ("mysql", "mariadb"):
        others = bind.execute(
            sa.text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name LIKE 'mastertrail\\_%' "
                "AND table_type = 'BASE TABLE' AND engine <> 'InnoDB'"
            )
        ).scalars()
        for table in list(others):
            op.execute(f"ALTER TABLE {table} ENGINE=InnoDB")


def downgrade() -> None:
    raise NotImplementedError(
        "the reflectable schema is not converted back in place: restore a backup taken "
        "before the upgrade"
    )
