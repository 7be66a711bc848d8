"""What the migration tests share: the schema as found, and a log in format 1 written
as an old release wrote it."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import eventstore
from eventstore.links import GENESIS, link
from eventstore.migrate import head_revision
from eventstore.recorded import canonical_json
from eventstore.types import UUIDBytes

LOG_TABLES = {
    "mastertrail_events",
    "mastertrail_texts",
    "mastertrail_head",
    "mastertrail_alembic_version",
}


def tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def log_triggers(conn: Connection, table: str = "mastertrail_events") -> int:
    """How many triggers guard ``table``."""
    query = {
        "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t",
        "postgresql": "SELECT COUNT(*) FROM pg_trigger "
        "WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal",
        "mysql": "SELECT COUNT(*) FROM information_schema.triggers "
        "WHERE event_object_schema = DATABASE() AND event_object_table = :t",
    }[conn.dialect.name]
    return int(conn.execute(sa.text(query), {"t": table}).scalar_one())


#: Triggers per backend and table: UPDATE and DELETE (PostgreSQL: one for both, one for
#: TRUNCATE), and on SQLite one refusing a row that would replace another; the head row's:
#: INSERT, DELETE and UPDATE (PostgreSQL: one for UPDATE, with its condition, one for
#: INSERT and DELETE, one for TRUNCATE). PostgreSQL
#: checks the log's deletes (only archived rows) in a trigger of its own. The archive's
#: segments and the masters' states where it ends: UPDATE, DELETE (PostgreSQL: one for
#: both, one for TRUNCATE) and INSERT.
EXPECTED_TRIGGERS = {
    "sqlite": {
        "mastertrail_events": 3,
        "mastertrail_texts": 3,
        "mastertrail_head": 3,
        "mastertrail_archive_segments": 3,
        "mastertrail_archive_states": 3,
    },
    "postgresql": {
        "mastertrail_events": 3,
        "mastertrail_texts": 2,
        "mastertrail_head": 3,
        "mastertrail_archive_segments": 3,
        "mastertrail_archive_states": 3,
    },
    "mysql": {
        "mastertrail_events": 2,
        "mastertrail_texts": 2,
        "mastertrail_head": 3,
        "mastertrail_archive_segments": 3,
        "mastertrail_archive_states": 3,
    },
}


def assert_schema_once(engine: Engine) -> None:
    """The schema is there exactly once: one version row at the head, one head row, the
    triggers, and an empty log that accepts an append."""
    assert tables(engine) >= LOG_TABLES
    with engine.begin() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM mastertrail_alembic_version"))
        assert versions.scalars().all() == [head_revision()]
        assert conn.execute(sa.text("SELECT COUNT(*) FROM mastertrail_head")).scalar_one() == 1
        for table, count in EXPECTED_TRIGGERS[conn.dialect.name].items():
            assert log_triggers(conn, table) == count, table
        eventstore.check_schema(conn)


#: Format-1 rows: texts told apart only by case, a trailing space or non-ASCII letters.
FORMAT_1_EVENTS = [
    (1, "master.registered", {"name": "a", "last_active": 1}, {"actor": "Tester"}),
    (1, "master.activated", {"last_active": 2}, {"actor": "tester"}),
    (2, "master.registered", {"name": "b", "last_active": 3}, {"actor": "tester "}),
    (1, "master.checked_in", {"last_active": 4}, {"actor": "tëster 日本 🛠"}),
    (2, "master.activated", {"last_active": 5}, {"actor": "tester"}),
]


def write_format_1_log(engine: Engine) -> list[dict[str, object]]:
    """The events of :data:`FORMAT_1_EVENTS` written as revision 0001 stored them (type
    and metadata texts in every row, hashes chained), the head moved after them."""
    table = sa.table(
        "mastertrail_events",
        *(sa.column(name) for name in ("position", "master_id", "version", "type")),
        sa.column("event_id", UUIDBytes()),
        *(sa.column(name) for name in ("schema_version", "data", "metadata", "recorded_at")),
        sa.column("hash", sa.LargeBinary()),
    )
    rows: list[dict[str, object]] = []
    previous, versions = GENESIS, {1: 0, 2: 0}
    for position, (master_id, type_name, data, metadata) in enumerate(FORMAT_1_EVENTS, 1):
        versions[master_id] += 1
        row: dict[str, object] = {
            "position": position,
            "event_id": uuid.uuid4(),
            "master_id": master_id,
            "version": versions[master_id],
            "type": type_name,
            "schema_version": 1,
            "data": canonical_json(data),
            "metadata": canonical_json(metadata),
            "recorded_at": 1_700_000_000_000_000 + position,
        }
        previous = row["hash"] = link(previous, **row)  # type: ignore[arg-type]
        rows.append(row)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
        conn.execute(
            sa.text("UPDATE mastertrail_head SET position = :p, hash = :h, last_master_id = 2"),
            {"p": len(rows), "h": previous},
        )
    return rows
