"""The stream tips the archive sealed: where a stream stands when its newest event is archived.

An append reads a stream's version as its newest event's in ``mastertrail_events``. So
that the archive can seal a master's newest event too (a master that stopped for good
would otherwise hold the archive back for ever), the transaction that records a segment
first records, in ``mastertrail_archive_tips``, the newest event (master, version, hash,
position) of every master whose newest event the segment removes from the log; a stream
with no event left in the table stands at its newest tip (see
:func:`eventstore.writer.newest_version`).

The table is append-only (UPDATE and DELETE refused; TRUNCATE too: a trigger on
PostgreSQL, system versioning on MariaDB), and a row must name an event of the log as it
is stored there (same master, version, hash and position), so that only a stream's true
tip can be recorded, and only before its event is deleted.

Revision ID: 0008_archive_stream_tips
Revises: 0007_archive_segments
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from eventstore.migrations.guards import refuse_change
from eventstore.types import digest_type, position_type

revision = "0008_archive_stream_tips"
down_revision = "0007_archive_segments"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"
TIPS = "mastertrail_archive_tips"

#: A new tip names no event of the log as stored.
NOT_IN_LOG = (
    f"NOT EXISTS (SELECT 1 FROM {EVENTS} WHERE position = NEW.position "
    "AND master_id = NEW.master_id AND version = NEW.version AND hash = NEW.hash)"
)
NOT_AN_EVENT = f"{TIPS} is append-only: a tip names an event of the log"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "mysql":
        op.execute("SET SESSION system_versioning_alter_history = KEEP")  # see revision 0005
    op.create_table(
        TIPS,
        sa.Column("master_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hash", digest_type(), nullable=False),
        sa.Column("position", position_type(), nullable=False),
        mysql_engine="InnoDB",
    )
    refuse_change(dialect, TIPS)
    if dialect == "sqlite":
        op.execute(
            f"CREATE TRIGGER {TIPS}_of_log BEFORE INSERT ON {TIPS} WHEN {NOT_IN_LOG} "
            f"BEGIN SELECT RAISE(ABORT, '{NOT_AN_EVENT}'); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION mastertrail_tip_of_log() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN IF {NOT_IN_LOG} THEN RAISE EXCEPTION "
            f"'{NOT_AN_EVENT}' USING ERRCODE = 'insufficient_privilege'; END IF; "
            "RETURN NEW; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {TIPS}_of_log BEFORE INSERT ON {TIPS} "
            "FOR EACH ROW EXECUTE FUNCTION mastertrail_tip_of_log()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER {TIPS}_of_log BEFORE INSERT ON {TIPS} FOR EACH ROW "
            f"IF {NOT_IN_LOG} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = "
            f"'{NOT_AN_EVENT}'; END IF"
        )
        # TRUNCATE fires no trigger; a system-versioned table refuses it (see revision 0005).
        op.execute(f"ALTER TABLE {TIPS} ADD SYSTEM VERSIONING")
        op.execute("SET SESSION system_versioning_alter_history = ERROR")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for name in ("of_log", "no_change", "no_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {TIPS}_{name} ON {TIPS}")
        op.execute("DROP FUNCTION IF EXISTS mastertrail_tip_of_log()")
    else:
        for name in ("of_log", "no_update", "no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TIPS}_{name}")
    if dialect == "mysql":
        op.execute("SET SESSION system_versioning_alter_history = KEEP")
        op.execute(f"ALTER TABLE {TIPS} DROP SYSTEM VERSIONING")
    op.drop_table(TIPS)
