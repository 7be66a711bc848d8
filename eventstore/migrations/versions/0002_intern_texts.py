"""Store each event type name and metadata document once, in ``mastertrail_texts``.

Events keep ``type_id`` and ``metadata_id`` instead of the texts. The hash chain covers the
texts, so every stored hash stays valid. On SQLite the table is rebuilt, which also drops
``AUTOINCREMENT`` (positions come from the head row, which only moves forward, so the
per-append write to ``sqlite_sequence`` bought nothing) and the position its indexes held
twice. On PostgreSQL one ``ALTER TABLE``
rewrites the table; on MariaDB the ids are filled in and the table is rebuilt without the
texts. The triggers refusing change are dropped only while the migration rewrites the log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

from eventstore.types import UUIDBytes, digest_type, position_type

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"
TEXTS = "mastertrail_texts"
REFUSAL = "{} is append-only: UPDATE and DELETE are refused"


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.create_table(
        TEXTS,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("digest", digest_type(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.UniqueConstraint("digest", name="mastertrail_texts_digest"),
        mysql_engine="InnoDB",
    )
    _store_texts(bind)
    if dialect == "sqlite":
        _rebuild_sqlite()
    elif dialect == "postgresql":
        _convert_postgresql()
    else:
        _convert_mariadb()
    for statement in _text_triggers(dialect):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError(
        "the log's format 2 is not converted back in place: restore a backup taken before "
        "the upgrade, or replay the log into a database of the older format"
    )


def _store_texts(bind: sa.Connection) -> None:
    """Every distinct type name and metadata text of the log, in ``mastertrail_texts``.

    Distinct as strings (on MariaDB compared as bytes, not by the case-blind collation),
    keyed by the SHA-256 computed here as :mod:`eventstore.texts` computes it.
    """
    if bind.dialect.name == "mysql":
        distinct = "SELECT DISTINCT CONVERT({0} USING utf8mb4) COLLATE utf8mb4_bin FROM " + EVENTS
    else:
        distinct = "SELECT DISTINCT {0} FROM " + EVENTS
    values = {
        value
        for column in ("type", "metadata")
        for value in bind.exec_driver_sql(distinct.format(column)).scalars()
    }
    table = sa.table(TEXTS, sa.column("digest", digest_type()), sa.column("text", sa.Text()))
    for value in sorted(values):
        bind.execute(
            table.insert().values(digest=hashlib.sha256(value.encode()).digest(), text=value)
        )


def _rebuild_sqlite() -> None:
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_{action}")
    op.create_table(
        f"{EVENTS}_new",
        sa.Column("position", position_type(), primary_key=True, autoincrement=False),
        sa.Column("event_id", UUIDBytes(), nullable=False),
        sa.Column("master_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.SmallInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("metadata_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("hash", digest_type(), nullable=False),
        sa.UniqueConstraint("event_id", name=f"{EVENTS}_event_id"),
        sa.UniqueConstraint("master_id", "version", name=f"{EVENTS}_stream"),
    )
    op.execute(
        f"INSERT INTO {EVENTS}_new SELECT e.position, e.event_id, e.master_id, e.version, "
        "t.id, e.schema_version, e.data, m.id, e.recorded_at, e.hash "
        f"FROM {EVENTS} e JOIN {TEXTS} t ON t.text = e.type JOIN {TEXTS} m ON m.text = e.metadata "
        "ORDER BY e.position"
    )
    op.execute(f"DROP TABLE {EVENTS}")
    op.execute(f"ALTER TABLE {EVENTS}_new RENAME TO {EVENTS}")
    # Every SQLite index ends with the rowid, here the position: these two keep the order
    # of (recorded_at, position) and (master_id, position) without storing it twice.
    op.create_index(f"{EVENTS}_recorded_at", EVENTS, ["recorded_at"])
    op.create_index(f"{EVENTS}_master_position", EVENTS, ["master_id"])
    for action in ("update", "delete"):
        op.execute(
            f"CREATE TRIGGER {EVENTS}_no_{action} BEFORE {action.upper()} ON {EVENTS} "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL.format(EVENTS)}'); END"
        )


def _convert_postgresql() -> None:
    # One rewrite of the table; ALTER TABLE fires no row trigger.
    op.execute(
        "CREATE FUNCTION pg_temp.mastertrail_text_id(value text) RETURNS integer "
        f"LANGUAGE sql STABLE AS $$ SELECT id FROM {TEXTS} "
        "WHERE digest = sha256(convert_to(value, 'UTF8')) $$"
    )
    op.execute(
        f"ALTER TABLE {EVENTS} "
        "ALTER COLUMN type TYPE integer USING pg_temp.mastertrail_text_id(type), "
        "ALTER COLUMN metadata TYPE integer USING pg_temp.mastertrail_text_id(metadata)"
    )
    op.execute(f"ALTER TABLE {EVENTS} RENAME COLUMN type TO type_id")
    op.execute(f"ALTER TABLE {EVENTS} RENAME COLUMN metadata TO metadata_id")
    op.execute("DROP FUNCTION pg_temp.mastertrail_text_id(text)")


def _convert_mariadb() -> None:
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_{action}")
    op.execute(
        f"ALTER TABLE {EVENTS} ADD COLUMN type_id INT NULL AFTER version, "
        "ADD COLUMN metadata_id INT NULL AFTER data"
    )
    op.execute(
        f"UPDATE {EVENTS} e "
        f"JOIN {TEXTS} t ON t.digest = UNHEX(SHA2(CONVERT(e.type USING utf8mb4), 256)) "
        f"JOIN {TEXTS} m ON m.digest = UNHEX(SHA2(CONVERT(e.metadata USING utf8mb4), 256)) "
        "SET e.type_id = t.id, e.metadata_id = m.id"
    )
    # A copying ALTER: the dropped texts' space is given back.
    op.execute(
        f"ALTER TABLE {EVENTS} DROP COLUMN type, DROP COLUMN metadata, "
        "MODIFY type_id INT NOT NULL, MODIFY metadata_id INT NOT NULL, ALGORITHM=COPY"
    )
    for action in ("update", "delete"):
        op.execute(
            f"CREATE TRIGGER {EVENTS}_no_{action} BEFORE {action.upper()} ON {EVENTS} "
            f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{REFUSAL.format(EVENTS)}'"
        )


def _text_triggers(dialect: str) -> list[str]:
    """The texts are append-only like the log: UPDATE and DELETE (and TRUNCATE) refused."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {TEXTS}_no_{action} BEFORE {action.upper()} ON {TEXTS} "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL.format(TEXTS)}'); END"
            for action in ("update", "delete")
        ]
    if dialect == "postgresql":
        # Revision 0001's function, now naming the table it guards.
        return [
            "CREATE OR REPLACE FUNCTION mastertrail_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'% is append-only: UPDATE and DELETE are refused', TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $$",
            f"CREATE TRIGGER {TEXTS}_no_change BEFORE UPDATE OR DELETE ON {TEXTS} "
            "FOR EACH ROW EXECUTE FUNCTION mastertrail_refuse_change()",
            f"CREATE TRIGGER {TEXTS}_no_truncate BEFORE TRUNCATE ON {TEXTS} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mastertrail_refuse_change()",
        ]
    return [
        # The empty guard table's second foreign key makes InnoDB refuse TRUNCATE here too.
        "ALTER TABLE mastertrail_truncate_guard ADD COLUMN text_id INT NULL, "
        "ADD CONSTRAINT mastertrail_truncate_guard_text_fk FOREIGN KEY (text_id) "
        f"REFERENCES {TEXTS} (id)",
    ] + [
        f"CREATE TRIGGER {TEXTS}_no_{action} BEFORE {action.upper()} ON {TEXTS} "
        f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{REFUSAL.format(TEXTS)}'"
        for action in ("update", "delete")
    ]
