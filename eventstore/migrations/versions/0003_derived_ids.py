"""Log format 3: event ids derived rather than stored, and two index entries fewer per
event.

- ``event_id`` may be NULL: an event whose id is the one its master, version and time
  derive (:mod:`eventstore.ids`) stores none. The ids already stored stay as they are, and
  stay unique: on SQLite and PostgreSQL a partial unique index holds the stored ones only;
  MariaDB, with no partial index, keeps its unique index, which allows many NULLs.
- The index on ``(master_id, position)`` goes: the stream's unique ``(master_id,
  version)`` orders a master's events the same way, and :mod:`projections.queries` seeks
  it instead.
- On SQLite the time index holds each event's minute instead of its microseconds
  (``recorded_at / 60000000``, as ``eventstore.reads.recorded_minute`` writes it, so
  that SQLite's planner matches the two).

Every stored event, id and hash stays as it is. On SQLite the table is rebuilt; the
triggers refusing change are dropped only while it is. MariaDB commits each DDL
statement; each step here can run again, so the next upgrade finishes one that stopped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from eventstore.migrations.guards import refuse_change
from eventstore.types import UUIDBytes, digest_type, position_type

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"
#: Microseconds in a minute, the key of SQLite's time index at this revision.
MINUTE = 60_000_000


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        _rebuild_sqlite()
    elif dialect == "postgresql":
        op.execute(f"ALTER TABLE {EVENTS} ALTER COLUMN event_id DROP NOT NULL")
        op.execute(f"ALTER TABLE {EVENTS} DROP CONSTRAINT IF EXISTS {EVENTS}_event_id")
        op.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {EVENTS}_event_id ON {EVENTS} (event_id) "
            "WHERE event_id IS NOT NULL"
        )
        op.execute(f"DROP INDEX IF EXISTS {EVENTS}_master_position")
    else:
        op.execute(f"ALTER TABLE {EVENTS} MODIFY event_id BINARY(16) NULL")
        op.execute(f"DROP INDEX IF EXISTS {EVENTS}_master_position ON {EVENTS}")


def downgrade() -> None:
    raise NotImplementedError(
        "the log's format 3 is not converted back in place: restore a backup taken before "
        "the upgrade, or replay the log into a database of the older format"
    )


def _rebuild_sqlite() -> None:
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_{action}")
    op.create_table(
        f"{EVENTS}_new",
        sa.Column("position", position_type(), primary_key=True, autoincrement=False),
        sa.Column("event_id", UUIDBytes(), nullable=True),
        sa.Column("master_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.SmallInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("metadata_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("hash", digest_type(), nullable=False),
        sa.UniqueConstraint("master_id", "version", name=f"{EVENTS}_stream"),
    )
    op.execute(f"INSERT INTO {EVENTS}_new SELECT * FROM {EVENTS} ORDER BY position")
    op.execute(f"DROP TABLE {EVENTS}")
    op.execute(f"ALTER TABLE {EVENTS}_new RENAME TO {EVENTS}")
    op.execute(
        f"CREATE UNIQUE INDEX {EVENTS}_event_id ON {EVENTS} (event_id) WHERE event_id IS NOT NULL"
    )
    # Every SQLite index ends with the rowid, the position: this one orders by
    # (minute, position).
    op.execute(f"CREATE INDEX {EVENTS}_recorded_at ON {EVENTS} (recorded_at / {MINUTE})")
    refuse_change("sqlite", EVENTS)
