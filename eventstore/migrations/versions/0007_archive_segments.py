"""The archive: a table of sealed segments, and the one delete the log's guards allow.

``mastertrail_archive_segments`` records each sealed segment (see
:mod:`eventstore.archive`). It is append-only like the log: UPDATE and DELETE are refused
(and TRUNCATE: a trigger on PostgreSQL, system versioning on MariaDB, as revision 0005 does
for the log), and so is a row that does not start right after the last segment, or that
would replace one (SQLite's ``INSERT OR REPLACE``).

``mastertrail_events`` now allows DELETE of a row that a sealed segment covers, and of no
other: the archive removes a segment's rows in the transaction that records it. The
segments are contiguous from position 1, so "covered" is "at or below the last segment's
last position", one lookup by the table's key. UPDATE and TRUNCATE stay refused.

- SQLite and MariaDB: the row-level DELETE trigger refuses a row above that position.
- PostgreSQL: the row-level trigger refuses UPDATE only; a statement-level trigger after
  DELETE reads the deleted rows (a transition table) and refuses the statement if any is
  above it, so that the check costs one lookup per statement.
- MariaDB keeps a deleted row of a system-versioned table as a history row; the archive
  removes those with ``DELETE HISTORY`` (which a plain DELETE cannot reach, and which only
  ever removes rows already deleted).

Revision ID: 0007_archive_segments
Revises: 0006_utf8mb4_log
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from eventstore.migrations.guards import REFUSAL, refuse_change
from eventstore.types import digest_type, position_type

revision = "0007_archive_segments"
down_revision = "0006_utf8mb4_log"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"
SEGMENTS = "mastertrail_archive_segments"

#: The last position a sealed segment covers (0 before the first).
#: The segments are contiguous, so the last by key ends furthest: one lookup by the key.
LAST = f"SELECT last_position FROM {SEGMENTS} ORDER BY first_position DESC LIMIT 1"
SEALED = f"COALESCE(({LAST}), 0)"
UNSEALED = f"{EVENTS} is append-only: only rows of a sealed archive segment may be deleted"
OUT_OF_ORDER = f"{SEGMENTS} is append-only: a segment starts right after the last one"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "mysql":
        op.execute("SET SESSION system_versioning_alter_history = KEEP")  # see revision 0005
    op.create_table(
        SEGMENTS,
        sa.Column("first_position", position_type(), primary_key=True, autoincrement=False),
        sa.Column("last_position", position_type(), nullable=False),
        sa.Column("first_recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("last_recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("previous_hash", digest_type(), nullable=False),
        sa.Column("last_hash", digest_type(), nullable=False),
        sa.Column("file_sha256", digest_type(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("directory", sa.Text(), nullable=False),
        sa.Column("sealed_at", sa.BigInteger(), nullable=False),
        mysql_engine="InnoDB",
    )
    refuse_change(dialect, SEGMENTS)
    # A new segment starts right after the last one (or at 1) and does not end before it
    # starts.
    bad = (
        f"NEW.first_position <> {SEALED} + 1 OR NEW.last_position < NEW.first_position "
        "OR NEW.count <> NEW.last_position - NEW.first_position + 1"
    )
    if dialect == "sqlite":
        _sqlite(bad)
    elif dialect == "postgresql":
        _postgresql(bad)
    else:
        _mariadb(bad)


def _sqlite(bad: str) -> None:
    op.execute(
        f"CREATE TRIGGER {SEGMENTS}_in_order BEFORE INSERT ON {SEGMENTS} WHEN {bad} "
        f"BEGIN SELECT RAISE(ABORT, '{OUT_OF_ORDER}'); END"
    )
    op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_delete")
    op.execute(
        f"CREATE TRIGGER {EVENTS}_no_delete BEFORE DELETE ON {EVENTS} "
        f"WHEN OLD.position > {SEALED} BEGIN SELECT RAISE(ABORT, '{UNSEALED}'); END"
    )


def _postgresql(bad: str) -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION mastertrail_segment_in_order() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN IF {bad} THEN RAISE EXCEPTION '{OUT_OF_ORDER}' "
        "USING ERRCODE = 'insufficient_privilege'; END IF; RETURN NEW; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {SEGMENTS}_in_order BEFORE INSERT ON {SEGMENTS} "
        "FOR EACH ROW EXECUTE FUNCTION mastertrail_segment_in_order()"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION mastertrail_delete_sealed_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF EXISTS (SELECT 1 FROM gone WHERE position > {SEALED}) THEN "
        f"RAISE EXCEPTION '{UNSEALED}' USING ERRCODE = 'insufficient_privilege'; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_change ON {EVENTS}")
    op.execute(
        f"CREATE TRIGGER {EVENTS}_no_change BEFORE UPDATE ON {EVENTS} "
        "FOR EACH ROW EXECUTE FUNCTION mastertrail_refuse_change()"
    )
    op.execute(
        f"CREATE TRIGGER {EVENTS}_sealed_only AFTER DELETE ON {EVENTS} "
        "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
        "EXECUTE FUNCTION mastertrail_delete_sealed_only()"
    )


def _mariadb(bad: str) -> None:
    def signal(message: str) -> str:
        return f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{message}'"

    op.execute(
        f"CREATE TRIGGER {SEGMENTS}_in_order BEFORE INSERT ON {SEGMENTS} FOR EACH ROW "
        f"IF {bad} THEN {signal(OUT_OF_ORDER)}; END IF"
    )
    op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_delete")
    op.execute(
        f"CREATE TRIGGER {EVENTS}_no_delete BEFORE DELETE ON {EVENTS} FOR EACH ROW "
        f"IF OLD.position > {SEALED} THEN {signal(UNSEALED)}; END IF"
    )
    # TRUNCATE fires no trigger; a system-versioned table refuses it (see revision 0005).
    op.execute(f"ALTER TABLE {SEGMENTS} ADD SYSTEM VERSIONING")
    op.execute("SET SESSION system_versioning_alter_history = ERROR")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_sealed_only ON {EVENTS}")
        op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_change ON {EVENTS}")
        op.execute(
            f"CREATE TRIGGER {EVENTS}_no_change BEFORE UPDATE OR DELETE ON {EVENTS} "
            "FOR EACH ROW EXECUTE FUNCTION mastertrail_refuse_change()"
        )
        op.execute("DROP FUNCTION IF EXISTS mastertrail_delete_sealed_only()")
        op.execute(f"DROP TRIGGER IF EXISTS {SEGMENTS}_in_order ON {SEGMENTS}")
        op.execute("DROP FUNCTION IF EXISTS mastertrail_segment_in_order()")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {SEGMENTS}_in_order")
        body = (
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL.format(EVENTS)}'); END"
            if dialect == "sqlite"
            else f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = "
            f"'{REFUSAL.format(EVENTS)}'"
        )
        op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_delete")
        op.execute(f"CREATE TRIGGER {EVENTS}_no_delete BEFORE DELETE ON {EVENTS} {body}")
    if dialect == "mysql":
        op.execute("SET SESSION system_versioning_alter_history = KEEP")
        op.execute(f"ALTER TABLE {SEGMENTS} DROP SYSTEM VERSIONING")
    op.drop_table(SEGMENTS)
