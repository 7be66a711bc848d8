"""The log's tables, defined once. Migrations create them; this module only describes them.

``mastertrail_events`` is the append-only log. ``mastertrail_head`` is a single row that
serialises appends: every writer locks it, reads the last position and hash, appends, and
moves it forward, all in its own transaction. That one lock gives the log a gap-free global
order equal to commit order, and the hash chain its predecessor (see ``docs/ordering.rst``).
``mastertrail_texts`` holds each event type name and each metadata document once; events
refer to them by id (see :mod:`eventstore.texts`). ``mastertrail_archive_segments`` records
each sealed archive segment, whose events left ``mastertrail_events`` (see
:mod:`eventstore.archive`); ``mastertrail_archive_tips`` and ``mastertrail_archive_states``
where the streams and the masters stand where the archive ends.
"""

from __future__ import annotations

import sqlalchemy as sa

from eventstore.types import UUIDBytes, digest_type, position_type

EVENTS_TABLE = "mastertrail_events"
HEAD_TABLE = "mastertrail_head"
TEXTS_TABLE = "mastertrail_texts"
SEGMENTS_TABLE = "mastertrail_archive_segments"
TIPS_TABLE = "mastertrail_archive_tips"
STATES_TABLE = "mastertrail_archive_states"
VERSION_TABLE = "mastertrail_alembic_version"

#: Longest stable event type name.
TYPE_NAME_LENGTH = 64

metadata = sa.MetaData()

events = sa.Table(
    EVENTS_TABLE,
    metadata,
    sa.Column("position", position_type(), primary_key=True, autoincrement=False),
    # Stored only when it is not the id the event's master, version and time derive (see
    # eventstore.ids): NULL for every event mastertrail writes itself.
    sa.Column("event_id", UUIDBytes(), nullable=True),
    sa.Column("master_id", sa.Integer(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("type_id", sa.Integer(), nullable=False),  # the type name, in texts
    sa.Column("schema_version", sa.SmallInteger(), nullable=False),
    sa.Column("data", sa.Text(), nullable=False),
    sa.Column("metadata_id", sa.Integer(), nullable=False),  # the metadata JSON, in texts
    # Microseconds since the POSIX epoch, UTC: one integer sorts and compares the same way
    # on every backend, with no time-zone conversion by a driver.
    sa.Column("recorded_at", sa.BigInteger(), nullable=False),
    sa.Column("hash", digest_type(), nullable=False),
    sa.UniqueConstraint("master_id", "version", name="mastertrail_events_stream"),
    # The stored ids only (MariaDB, with no partial index, holds the NULLs too).
    sa.Index(
        "mastertrail_events_event_id",
        "event_id",
        unique=True,
        sqlite_where=sa.text("event_id IS NOT NULL"),
        postgresql_where=sa.text("event_id IS NOT NULL"),
    ),
    # On SQLite it is made on the minute alone: a VIRTUAL generated column, recorded_minute,
    # which only SQLite's table has (eventstore.reads.recorded_minute).
    sa.Index("mastertrail_events_recorded_at", "recorded_at", "position"),
)

#: SQLite's time index holds each event's minute (``recorded_at / TIME_BUCKET``), 4
#: bytes, rather than its microseconds, 8: a search by time seeks the minute, then reads
#: the events of that one minute.
TIME_BUCKET = 60_000_000

texts = sa.Table(
    TEXTS_TABLE,
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("digest", digest_type(), nullable=False),  # SHA-256 of the text's UTF-8
    sa.Column("text", sa.Text(), nullable=False),
    sa.UniqueConstraint("digest", name="mastertrail_texts_digest"),
)

head = sa.Table(
    HEAD_TABLE,
    metadata,
    sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("position", position_type(), nullable=False),
    sa.Column("hash", digest_type(), nullable=False),
    sa.Column("last_master_id", sa.Integer(), nullable=False),
)

#: The one row of ``mastertrail_head``.
HEAD_ROW_ID = 1

#: One row per sealed archive segment, in log order: the positions ``first_position`` ..
#: ``last_position`` left ``mastertrail_events`` for the file ``file_name`` in ``directory``
#: (absolute, as written; its SHA-256 ``file_sha256``). ``previous_hash`` is the hash of
#: the event before the first (the chain's link into the segment), ``last_hash`` that of
#: its last event. Append-only: the database refuses a change, a delete, and a row that
#: does not start right after the last.
archive_segments = sa.Table(
    SEGMENTS_TABLE,
    metadata,
    sa.Column("first_position", position_type(), primary_key=True, autoincrement=False),
    sa.Column("last_position", position_type(), nullable=False),
    sa.Column("first_recorded_at", sa.BigInteger(), nullable=False),  # microseconds, UTC
    sa.Column("last_recorded_at", sa.BigInteger(), nullable=False),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("previous_hash", digest_type(), nullable=False),
    sa.Column("last_hash", digest_type(), nullable=False),
    sa.Column("file_sha256", digest_type(), nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("directory", sa.Text(), nullable=False),
    sa.Column("sealed_at", sa.BigInteger(), nullable=False),  # microseconds, UTC
)

#: The newest event of each master whose newest event an archive segment removed from
#: ``mastertrail_events``, recorded in the transaction that recorded the segment: where a
#: stream with no event left in the table stands (see revision ``0008_archive_stream_tips``).
#: Append-only; a row must name an event of the log as stored when it is recorded.
archive_tips = sa.Table(
    TIPS_TABLE,
    metadata,
    sa.Column("master_id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("hash", digest_type(), nullable=False),
    sa.Column("position", position_type(), nullable=False),
)

#: The masters' states where the archive ends: the transaction that records a segment
#: records the state after it of each master whose state it changed, with the segment's
#: last position (``archived_through``), so that a master's row with the highest
#: ``archived_through`` is its state where the table starts (see revision
#: ``0010_archive_end_states``). Append-only; a row is of the newest segment, at a version
#: after its master's newest row's.
archive_states = sa.Table(
    STATES_TABLE,
    metadata,
    sa.Column("master_id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("archived_through", position_type(), primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("active", sa.Integer(), nullable=False),
    sa.Column("last_active", sa.Integer(), nullable=False),
    mysql_charset="utf8mb4",
    sqlite_with_rowid=False,
)
