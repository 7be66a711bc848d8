"""The masters' states where the archive ends, recorded with each segment sealed.

A reading of the table at a position after the archive needs every master's state where
the table starts: the whole state of a master whose events are all archived, the name of
one whose registration is. Revision ``0007`` kept them in the segment files only, so such
a reading opened the newest segment. Now the transaction that records a segment also
records, in ``mastertrail_archive_states``, the state after it of every master whose state
it changed (the first segment sealed after this revision: of every master the archive
knows), with ``archived_through``, the segment's last position (see
:mod:`eventstore.archive_states`).

The table is append-only (UPDATE and DELETE refused; TRUNCATE too: a trigger on
PostgreSQL, system versioning on MariaDB) and keyed by master and ``archived_through``. A
row must be of the newest sealed segment (``archived_through`` its last position) and of a
version after its master's newest row's: so a master's row with the highest
``archived_through`` is its newest state, one seek of the key.

Revision ID: 0010_archive_end_states
Revises: 0009_head_guard_fast_path
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from eventstore.migrations.guards import refuse_change
from eventstore.types import position_type

revision = "0010_archive_end_states"
down_revision = "0009_head_guard_fast_path"
branch_labels = None
depends_on = None

SEGMENTS = "mastertrail_archive_segments"
STATES = "mastertrail_archive_states"

#: A new row is not of the newest segment, or not of a version after its master's newest
#: row's (each a seek of a key).
OUT_OF_PLACE = (
    f"NEW.archived_through <> COALESCE((SELECT last_position FROM {SEGMENTS} "
    "ORDER BY first_position DESC LIMIT 1), 0) OR NEW.version <= COALESCE((SELECT version "
    f"FROM {STATES} WHERE master_id = NEW.master_id ORDER BY archived_through DESC "
    "LIMIT 1), 0)"
)
NOT_NEWEST = (
    f"{STATES} is append-only: a state is recorded with the newest segment, of a version "
    "after the newest recorded of its master"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "mysql":
        op.execute("SET SESSION system_versioning_alter_history = KEEP")  # see revision 0005
    op.create_table(
        STATES,
        sa.Column("master_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("archived_through", position_type(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("last_active", sa.Integer(), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        sqlite_with_rowid=False,
    )
    refuse_change(dialect, STATES)
    if dialect == "sqlite":
        op.execute(
            f"CREATE TRIGGER {STATES}_newest BEFORE INSERT ON {STATES} WHEN {OUT_OF_PLACE} "
            f"BEGIN SELECT RAISE(ABORT, '{NOT_NEWEST}'); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION mastertrail_state_newest() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN IF {OUT_OF_PLACE} THEN RAISE EXCEPTION "
            f"'{NOT_NEWEST}' USING ERRCODE = 'insufficient_privilege'; END IF; "
            "RETURN NEW; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {STATES}_newest BEFORE INSERT ON {STATES} "
            "FOR EACH ROW EXECUTE FUNCTION mastertrail_state_newest()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER {STATES}_newest BEFORE INSERT ON {STATES} FOR EACH ROW "
            f"IF {OUT_OF_PLACE} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = "
            f"'{NOT_NEWEST}'; END IF"
        )
        # TRUNCATE fires no trigger; a system-versioned table refuses it (see revision 0005).
        op.execute(f"ALTER TABLE {STATES} ADD SYSTEM VERSIONING")
        op.execute("SET SESSION system_versioning_alter_history = ERROR")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for name in ("newest", "no_change", "no_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {STATES}_{name} ON {STATES}")
        op.execute("DROP FUNCTION IF EXISTS mastertrail_state_newest()")
    else:
        for name in ("newest", "no_update", "no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {STATES}_{name}")
    if dialect == "mysql":
        op.execute("SET SESSION system_versioning_alter_history = KEEP")
        op.execute(f"ALTER TABLE {STATES} DROP SYSTEM VERSIONING")
    op.drop_table(STATES)
