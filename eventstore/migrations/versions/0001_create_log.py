"""Create the append-only log, its head row, and the triggers that refuse change.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from eventstore.types import UUIDBytes, digest_type, position_type

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

REFUSAL = "mastertrail_events is append-only: UPDATE and DELETE are refused"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "mastertrail_events",
        # On SQLite the position is the rowid declared AUTOINCREMENT, so even a position
        # whose row is gone is never handed out again; elsewhere the head row counts.
        sa.Column("position", position_type(), primary_key=True, autoincrement=dialect == "sqlite"),
        sa.Column("event_id", UUIDBytes(), nullable=False),
        sa.Column("master_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("schema_version", sa.SmallInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("hash", digest_type(), nullable=False),
        sa.UniqueConstraint("event_id", name="mastertrail_events_event_id"),
        sa.UniqueConstraint("master_id", "version", name="mastertrail_events_stream"),
        sqlite_autoincrement=True,
        mysql_engine="InnoDB",
    )
    op.create_index(
        "mastertrail_events_recorded_at", "mastertrail_events", ["recorded_at", "position"]
    )
    op.create_index(
        "mastertrail_events_master_position", "mastertrail_events", ["master_id", "position"]
    )
    head = op.create_table(
        "mastertrail_head",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("position", position_type(), nullable=False),
        sa.Column("hash", digest_type(), nullable=False),
        sa.Column("last_master_id", sa.Integer(), nullable=False),
        mysql_engine="InnoDB",
    )
    op.bulk_insert(head, [{"id": 1, "position": 0, "hash": bytes(32), "last_master_id": 0}])
    for statement in _trigger_ddl(dialect):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS mastertrail_refuse_change() CASCADE")
    else:
        if dialect in ("mysql", "mariadb"):
            op.execute("DROP TABLE IF EXISTS mastertrail_truncate_guard")
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS mastertrail_events_no_{action}")
    op.drop_table("mastertrail_head")
    op.drop_table("mastertrail_events")


def _trigger_ddl(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER mastertrail_events_no_{action} BEFORE {action.upper()} "
            f"ON mastertrail_events BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            for action in ("update", "delete")
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION mastertrail_refuse_change() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{REFUSAL}' "
            "USING ERRCODE = 'insufficient_privilege'; END $$",
            "CREATE TRIGGER mastertrail_events_no_change BEFORE UPDATE OR DELETE "
            "ON mastertrail_events FOR EACH ROW EXECUTE FUNCTION mastertrail_refuse_change()",
            "CREATE TRIGGER mastertrail_events_no_truncate BEFORE TRUNCATE "
            "ON mastertrail_events FOR EACH STATEMENT EXECUTE FUNCTION mastertrail_refuse_change()",
        ]
    if dialect in ("mysql", "mariadb"):
        # TRUNCATE fires no trigger on MariaDB, but InnoDB refuses to truncate a table that
        # a foreign key references: the guard table is that reference, and stays empty.
        return [
            "CREATE TABLE mastertrail_truncate_guard (position BIGINT NULL, "
            "CONSTRAINT mastertrail_truncate_guard_fk FOREIGN KEY (position) "
            "REFERENCES mastertrail_events (position)) ENGINE=InnoDB",
        ] + [
            f"CREATE TRIGGER mastertrail_events_no_{action} BEFORE {action.upper()} "
            f"ON mastertrail_events FOR EACH ROW "
            f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{REFUSAL}'"
            for action in ("update", "delete")
        ]
    raise NotImplementedError(f"mastertrail does not support the {dialect} database")
