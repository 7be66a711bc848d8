"""Store each event type name and metadata document once, in ``mastertrail_texts``.

Events keep ``type_id`` and ``metadata_id`` instead of the texts. The hash chain covers the
texts, so every stored hash stays valid. On SQLite the table is rebuilt, which also drops
``AUTOINCREMENT`` (positions come from the head row, which only moves forward, so the
per-append write to ``sqlite_sequence`` bought nothing) and the position its indexes held
twice. On PostgreSQL one ``ALTER TABLE``
rewrites the table; on MariaDB the ids are filled in and the table is rebuilt without the
texts. The triggers refusing change are dropped only while the migration rewrites the log.

SQLite and PostgreSQL run it in one transaction. MariaDB commits each DDL statement, so an
upgrade stopped half-way leaves part of it done: every step here checks what is already
there, and the next upgrade finishes the work.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

from eventstore.migrations.guards import refuse_change
from eventstore.types import UUIDBytes, digest_type, position_type

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"
TEXTS = "mastertrail_texts"


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if not sa.inspect(bind).has_table(TEXTS):
        op.create_table(
            TEXTS,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("digest", digest_type(), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.UniqueConstraint("digest", name="mastertrail_texts_digest"),
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
            mysql_collate="utf8mb4_bin",
        )
    if "type" in _columns(bind, EVENTS):  # the events still hold their texts
        if dialect == "postgresql":  # no append may slip in between the texts and the rewrite
            op.execute(f"LOCK TABLE {EVENTS} IN SHARE ROW EXCLUSIVE MODE")
        _store_texts(bind)
        if dialect == "sqlite":
            _rebuild_sqlite()
        elif dialect == "postgresql":
            _convert_postgresql()
        else:
            _convert_mariadb(bind)
    if dialect == "mysql":
        refuse_change(dialect, EVENTS)  # dropped while the table was rebuilt
    _guard_texts(bind)


def _columns(bind: sa.Connection, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(bind).get_columns(table)}


def downgrade() -> None:
    raise NotImplementedError(
        "the log's format 2 is not converted back in place: restore a backup taken before "
        "the upgrade, or replay the log into a database of the older format"
    )


def _store_texts(bind: sa.Connection) -> None:
    """Every distinct type name and metadata text of the log, in ``mastertrail_texts``,
    keyed by the SHA-256 of its UTF-8 as :mod:`eventstore.texts` computes it.

    On MariaDB the server computes it, from the texts' own bytes in ``utf8mb4``: read
    through the client, a text would pass through the connection's character set (Buildbot
    connects with ``utf8``, which has no 4-byte characters) and its collation (which calls
    texts differing only in case or trailing spaces equal).
    """
    if bind.dialect.name == "mysql":
        as_utf8mb4 = "CONVERT({0} USING utf8mb4)"
        distinct = " UNION ".join(
            f"SELECT DISTINCT UNHEX(SHA2({as_utf8mb4.format(c)}, 256)) AS digest, "
            f"{as_utf8mb4.format(c)} AS text FROM {EVENTS}"
            for c in ("type", "metadata")
        )
        op.execute(
            f"INSERT INTO {TEXTS} (digest, text) SELECT found.digest, found.text "
            f"FROM ({distinct}) found WHERE NOT EXISTS "
            f"(SELECT 1 FROM {TEXTS} stored WHERE stored.digest = found.digest)"
        )
        return
    values = {
        value
        for column in ("type", "metadata")
        for value in bind.exec_driver_sql(f"SELECT DISTINCT {column} FROM {EVENTS}").scalars()
    }
    table = sa.table(TEXTS, sa.column("digest", digest_type()), sa.column("text", sa.Text()))
    stored = {bytes(digest) for digest in bind.execute(sa.select(table.c.digest)).scalars()}
    for value in sorted(values):
        digest = hashlib.sha256(value.encode()).digest()
        if digest not in stored:
            bind.execute(table.insert().values(digest=digest, text=value))


def _check_all_matched(unmatched: int) -> None:
    """Refuse to go on when some events found no text: nothing of theirs is dropped."""
    if unmatched:
        raise RuntimeError(
            f"{unmatched} events of {EVENTS} found no text in {TEXTS} (were they written "
            "during the upgrade by a master still running an older mastertrail?): the "
            "upgrade stops here, nothing of them dropped; stop those masters and upgrade again"
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
    bind = op.get_bind()
    count = f"SELECT (SELECT count(*) FROM {EVENTS}) - (SELECT count(*) FROM {EVENTS}_new)"
    _check_all_matched(int(bind.exec_driver_sql(count).scalar_one()))
    op.execute(f"DROP TABLE {EVENTS}")
    op.execute(f"ALTER TABLE {EVENTS}_new RENAME TO {EVENTS}")
    # Every SQLite index ends with the rowid, here the position: these two keep the order
    # of (recorded_at, position) and (master_id, position) without storing it twice.
    op.create_index(f"{EVENTS}_recorded_at", EVENTS, ["recorded_at"])
    op.create_index(f"{EVENTS}_master_position", EVENTS, ["master_id"])
    refuse_change("sqlite", EVENTS)


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


def _convert_mariadb(bind: sa.Connection) -> None:
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_{action}")
    if "type_id" not in _columns(bind, EVENTS):
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
    unmatched = f"SELECT count(*) FROM {EVENTS} WHERE type_id IS NULL OR metadata_id IS NULL"
    missing = int(bind.exec_driver_sql(unmatched).scalar_one())
    if missing:
        refuse_change("mysql", EVENTS)  # the log keeps its guard until the next try
    _check_all_matched(missing)
    # A copying ALTER: the dropped texts' space is given back.
    op.execute(
        f"ALTER TABLE {EVENTS} DROP COLUMN type, DROP COLUMN metadata, "
        "MODIFY type_id INT NOT NULL, MODIFY metadata_id INT NOT NULL, ALGORITHM=COPY"
    )


def _guard_texts(bind: sa.Connection) -> None:
    """The texts are append-only like the log: UPDATE and DELETE (and TRUNCATE) refused."""
    dialect = bind.dialect.name
    if dialect == "postgresql":
        # Revision 0001's function, now naming the table it guards.
        op.execute(
            "CREATE OR REPLACE FUNCTION mastertrail_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'% is append-only: UPDATE and DELETE are refused', TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
    if dialect == "mysql" and "text_id" not in _columns(bind, "mastertrail_truncate_guard"):
        # The empty guard table's second foreign key makes InnoDB refuse TRUNCATE here too.
        op.execute(
            "ALTER TABLE mastertrail_truncate_guard ADD COLUMN text_id INT NULL, "
            "ADD CONSTRAINT mastertrail_truncate_guard_text_fk FOREIGN KEY (text_id) "
            f"REFERENCES {TEXTS} (id)"
        )
    refuse_change(dialect, TEXTS)
