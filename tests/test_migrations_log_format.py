"""Migrations of the log's format: format 1 to 2 (interned texts), also when a previous
upgrade stopped half way, and 2 to 3 (the time index); every event reads back as before."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
from eventstore import schema
from eventstore.reads import recorded_minute
from eventstore.schema import events
from eventstore.texts import digest, text_ids
from tests.eventstore_support import T0, new_event
from tests.migrations_support import (
    assert_schema_once,
    write_format_1_log,
)


@pytest.fixture
def bare(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database, without the log's schema."""
    engine = eventstore.create_engine(db_url)
    yield engine
    engine.dispose()


class TestLogFormat2:
    """Revision 0002 moves type names and metadata into ``mastertrail_texts``, keeping
    every event, id and hash."""

    @pytest.fixture
    def migrated(self, bare: Engine) -> tuple[Engine, list[dict[str, object]]]:
        eventstore.upgrade(bare, to="0001")
        rows = write_format_1_log(bare)
        eventstore.upgrade(bare)
        return bare, rows

    def test_every_event_reads_back_as_written(
        self, migrated: tuple[Engine, list[dict[str, object]]]
    ) -> None:
        engine, rows = migrated
        events = list(eventstore.iter_log(engine))
        assert [
            (e.position, e.event_id, e.master_id, e.version, e.type, e.data, e.metadata)
            for e in events
        ] == [
            (
                r["position"],
                r["event_id"],
                r["master_id"],
                r["version"],
                r["type"],
                json.loads(str(r["data"])),
                json.loads(str(r["metadata"])),
            )
            for r in rows
        ]
        assert [bytes.fromhex(e.hash) for e in events] == [r["hash"] for r in rows]

    def test_the_chain_verifies_and_each_text_is_stored_once(
        self, migrated: tuple[Engine, list[dict[str, object]]]
    ) -> None:
        engine, rows = migrated
        assert eventstore.verify_chain(engine).ok
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT text FROM mastertrail_texts")).scalars().all()
        assert sorted(stored) == sorted(
            {str(r["type"]) for r in rows} | {str(r["metadata"]) for r in rows}
        )

    def test_the_schema_is_the_current_one_and_appends_continue_the_chain(
        self, migrated: tuple[Engine, list[dict[str, object]]]
    ) -> None:
        engine, rows = migrated
        assert_schema_once(engine)
        columns = {c["name"] for c in sa.inspect(engine).get_columns("mastertrail_events")}
        # SQLite's time index is on a generated column of its own (revision 0004).
        columns.discard("recorded_minute")
        assert columns == {c.name for c in schema.events.columns}
        with engine.begin() as conn:
            assert eventstore.append(conn, 2, 2, [new_event()]).positions == (len(rows) + 1,)
        assert eventstore.verify_chain(engine).ok
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                ddl = conn.execute(
                    sa.text("SELECT sql FROM sqlite_master WHERE name = 'mastertrail_events'")
                ).scalar_one()
            assert "AUTOINCREMENT" not in ddl.upper()


#: Where an upgrade to revision 0002 may have stopped: MariaDB commits each DDL statement.
HALF_WAY = {
    "texts-stored": [],
    "columns-added": [
        "DROP TRIGGER mastertrail_events_no_update",
        "DROP TRIGGER mastertrail_events_no_delete",
        "ALTER TABLE mastertrail_events ADD COLUMN type_id INT NULL AFTER version, "
        "ADD COLUMN metadata_id INT NULL AFTER data",
    ],
    "table-rebuilt": [
        "DROP TRIGGER mastertrail_events_no_update",
        "DROP TRIGGER mastertrail_events_no_delete",
        "ALTER TABLE mastertrail_events ADD COLUMN type_id INT NULL AFTER version, "
        "ADD COLUMN metadata_id INT NULL AFTER data",
        "UPDATE mastertrail_events e "
        "JOIN mastertrail_texts t ON BINARY t.text = BINARY e.type "
        "JOIN mastertrail_texts m ON BINARY m.text = BINARY e.metadata "
        "SET e.type_id = t.id, e.metadata_id = m.id",
        "ALTER TABLE mastertrail_events DROP COLUMN type, DROP COLUMN metadata, "
        "MODIFY type_id INT NOT NULL, MODIFY metadata_id INT NOT NULL",
    ],
}


@pytest.mark.parametrize("stage", list(HALF_WAY))
def test_an_upgrade_stopped_half_way_is_finished_by_the_next(bare: Engine, stage: str) -> None:
    """An upgrade to log format 2 that stopped after any of its steps (which only MariaDB,
    committing DDL statement by statement, can leave behind) is finished by the next
    upgrade: every event reads back, the chain verifies, the triggers are all there."""
    statements = HALF_WAY[stage]
    if statements and bare.dialect.name != "mysql":
        pytest.skip("SQLite and PostgreSQL run the whole migration in one transaction")
    eventstore.upgrade(bare, to="0001")
    rows = write_format_1_log(bare)
    everything = [str(r["type"]) for r in rows] + [str(r["metadata"]) for r in rows]
    with bare.begin() as conn:
        schema.texts.create(conn)
    with bare.begin() as conn:
        text_ids(conn, everything if stage == "table-rebuilt" else everything[:2])
        for statement in statements:
            conn.execute(sa.text(statement))
    eventstore.upgrade(bare)
    assert_schema_once(bare)
    events = list(eventstore.iter_log(bare))
    assert [(e.position, e.type, e.metadata) for e in events] == [
        (r["position"], r["type"], json.loads(str(r["metadata"]))) for r in rows
    ]
    assert eventstore.verify_chain(bare).ok
    if bare.dialect.name == "mysql":
        with bare.begin() as conn, pytest.raises(sa.exc.DBAPIError, match="System-versioned"):
            conn.execute(sa.text("TRUNCATE mastertrail_texts"))


def test_buildbots_utf8_connection_migrates_four_byte_characters_intact(
    bare: Engine, db_url: str
) -> None:
    """Buildbot connects to MariaDB with ``charset=utf8``, which has no 4-byte characters;
    the texts of a log upgraded through such a connection still hold them exactly."""
    if bare.dialect.name != "mysql":
        pytest.skip("a MariaDB connection character set")
    eventstore.upgrade(bare, to="0001")
    rows = write_format_1_log(bare)
    buildbots = sa.create_engine(sa.make_url(db_url).update_query_dict({"charset": "utf8"}))
    try:
        eventstore.upgrade(buildbots)
    finally:
        buildbots.dispose()
    events = list(eventstore.iter_log(bare))
    assert [e.metadata for e in events] == [json.loads(str(r["metadata"])) for r in rows]
    assert {"actor": "tëster 日本 🛠"} in [e.metadata for e in events]
    assert eventstore.verify_chain(bare).ok


def test_an_event_whose_text_cannot_be_found_stops_the_upgrade(bare: Engine) -> None:
    """If an event's text is not among the stored texts (here a texts table made beforehand
    holds another text under its digest), the upgrade stops and drops nothing."""
    if bare.dialect.name != "sqlite":
        pytest.skip("SQLite matches events to texts by the text itself")
    eventstore.upgrade(bare, to="0001")
    rows = write_format_1_log(bare)
    with bare.begin() as conn:
        schema.texts.create(conn)
        conn.execute(
            schema.texts.insert().values(
                digest=digest("master.activated"), text="master.something_else"
            )
        )
    with pytest.raises(RuntimeError, match="found no text"):
        eventstore.upgrade(bare)
    with bare.connect() as conn:
        assert "type" in {c["name"] for c in sa.inspect(conn).get_columns("mastertrail_events")}
        assert conn.execute(sa.text("SELECT count(*) FROM mastertrail_events")).scalar() == len(
            rows
        )


class TestLogFormat3:
    """Revision 0003 lets derived event ids go unstored and drops two index entries per
    event, keeping every event, stored id and hash."""

    @pytest.fixture
    def migrated(self, bare: Engine) -> tuple[Engine, list[eventstore.RecordedEvent]]:
        eventstore.upgrade(bare, to="0002")
        # Format 2 stores every id: these are version 4 ones. Appended after the head seen
        # (new streams), so that no table of a later revision is read.
        for master_id, count in ((1, 2), (2, 1)):
            with bare.begin() as conn:
                seen = eventstore.AfterSeen(0, eventstore.read_head(conn))
                eventstore.append(conn, master_id, seen, [new_event() for _ in range(count)])
        before = list(eventstore.iter_log(bare))
        eventstore.upgrade(bare)
        return bare, before

    def test_every_event_id_and_hash_is_kept(
        self, migrated: tuple[Engine, list[eventstore.RecordedEvent]]
    ) -> None:
        engine, before = migrated
        assert list(eventstore.iter_log(engine)) == before
        assert eventstore.verify_chain(engine).ok
        assert_schema_once(engine)

    def test_the_indexes_are_those_of_format_3(
        self, migrated: tuple[Engine, list[eventstore.RecordedEvent]]
    ) -> None:
        engine, _ = migrated
        inspector = sa.inspect(engine)
        if engine.dialect.name == "sqlite":  # whose reflection skips an index on an expression
            with engine.connect() as conn:
                found = conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'mastertrail_events'"
                )
                names = set(found.scalars())
        else:
            names = {i["name"] for i in inspector.get_indexes("mastertrail_events")}
            names |= {c["name"] for c in inspector.get_unique_constraints("mastertrail_events")}
        assert "mastertrail_events_master_position" not in names
        assert {"mastertrail_events_event_id", "mastertrail_events_recorded_at"} <= names
        columns = {c["name"]: c for c in inspector.get_columns("mastertrail_events")}
        assert columns["event_id"]["nullable"]

    def test_sqlite_seeks_the_minute_the_reads_ask_for_in_the_time_index(
        self, migrated: tuple[Engine, list[eventstore.RecordedEvent]]
    ) -> None:
        """The index is on the column the reads name, :data:`~eventstore.reads.recorded_minute`:
        otherwise SQLite's planner would scan the table for a time."""
        engine, _ = migrated
        if engine.dialect.name != "sqlite":
            pytest.skip("only SQLite's time index holds minutes")
        query = sa.select(events.c.position).where(recorded_minute == 29_000_000)
        sql = query.compile(engine, compile_kwargs={"literal_binds": True})
        with engine.connect() as conn:
            plan = " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        assert "INDEX mastertrail_events_recorded_at (recorded_minute=?)" in plan, plan

    def test_derived_ids_go_unstored_and_stored_ones_stay_unique(
        self, migrated: tuple[Engine, list[eventstore.RecordedEvent]]
    ) -> None:
        engine, before = migrated
        derived = eventstore.derived_event_id(1, 3, T0)
        assert derived is not None
        with engine.begin() as conn:
            eventstore.append(conn, 1, 2, [new_event(event_id=derived, recorded_at=T0)])
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(schema.events.c.event_id).order_by(schema.events.c.position)
            ).scalars()
            assert list(stored) == [*(e.event_id for e in before), None]
        again = new_event(event_id=before[0].event_id)
        with pytest.raises(eventstore.EventIdConflict), engine.begin() as conn:
            eventstore.append(conn, 3, 0, [again])
        assert eventstore.verify_chain(engine).ok
