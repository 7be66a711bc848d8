"""Creating and checking the log's schema: idempotent, safe from several processes at once,
and kept apart from any other alembic history in the same database."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import eventstore
from eventstore import SchemaMissing, SchemaTooNew, schema
from eventstore.chain import GENESIS, link
from eventstore.migrate import head_revision
from eventstore.reads import recorded_minute
from eventstore.recorded import canonical_json
from eventstore.schema import events
from eventstore.texts import digest, text_ids
from eventstore.types import UUIDBytes
from tests.eventstore_support import T0, new_event

SPAWN = multiprocessing.get_context("spawn")
UPGRADERS = 4
#: Seconds a process may take to upgrade (never reached when healthy).
DEADLINE = 120.0
LOG_TABLES = {
    "mastertrail_events",
    "mastertrail_texts",
    "mastertrail_head",
    "mastertrail_alembic_version",
}


def upgrade_when_released(url: str, start: Barrier) -> None:
    """Upgrade the schema at ``url`` as soon as every process is ready."""
    engine = eventstore.create_engine(url)
    start.wait()
    eventstore.upgrade(engine)
    engine.dispose()


@pytest.fixture
def bare(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database, without the log's schema."""
    engine = eventstore.create_engine(db_url)
    yield engine
    engine.dispose()


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
#: INSERT, DELETE and UPDATE (PostgreSQL: one for the three, one for TRUNCATE). PostgreSQL
#: checks the log's deletes (only archived rows) in a trigger of its own. The archive's
#: segments: UPDATE, DELETE (PostgreSQL: one for both, one for TRUNCATE) and INSERT.
EXPECTED_TRIGGERS = {
    "sqlite": {
        "mastertrail_events": 3,
        "mastertrail_texts": 3,
        "mastertrail_head": 3,
        "mastertrail_archive_segments": 3,
    },
    "postgresql": {
        "mastertrail_events": 3,
        "mastertrail_texts": 2,
        "mastertrail_head": 2,
        "mastertrail_archive_segments": 3,
    },
    "mysql": {
        "mastertrail_events": 2,
        "mastertrail_texts": 2,
        "mastertrail_head": 3,
        "mastertrail_archive_segments": 3,
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


class TestUpgrade:
    """eventstore.upgrade creates the schema and is safe to repeat."""

    def test_upgrade_creates_the_schema_under_its_own_version_table(self, bare: Engine) -> None:
        """A fresh database gets the log tables, versioned in mastertrail_alembic_version only."""
        eventstore.upgrade(bare)
        assert_schema_once(bare)
        assert "alembic_version" not in tables(bare)
        with bare.begin() as conn:
            assert eventstore.head_position(conn) == 0

    def test_upgrade_is_idempotent(self, bare: Engine) -> None:
        """Upgrading an up-to-date schema again changes nothing and keeps the events."""
        eventstore.upgrade(bare)
        with bare.begin() as conn:
            eventstore.append(conn, 1, 0, [new_event()])
        eventstore.upgrade(bare)
        eventstore.upgrade(bare)
        assert_schema_once(bare)
        with bare.begin() as conn:
            assert eventstore.head_position(conn) == 1
            assert len(eventstore.read_stream(conn, 1)) == 1
        assert eventstore.verify_chain(bare).ok

    def test_upgrade_leaves_another_alembic_history_alone(self, bare: Engine) -> None:
        """A database with its own alembic_version (Buildbot's) keeps it untouched."""
        with bare.begin() as conn:
            conn.execute(
                sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
            )
            conn.execute(sa.text("INSERT INTO alembic_version VALUES ('buildbot_0042')"))
        eventstore.upgrade(bare)
        assert_schema_once(bare)
        with bare.begin() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            assert rows.all() == ["buildbot_0042"]

    @pytest.mark.slow
    def test_concurrent_upgrades_all_succeed_and_create_the_schema_once(
        self, db_url: str, bare: Engine
    ) -> None:
        """Four processes upgrading a fresh database at once all succeed; the schema exists once."""
        start = SPAWN.Barrier(UPGRADERS + 1)
        processes = [
            SPAWN.Process(target=upgrade_when_released, args=(db_url, start), daemon=True)
            for _ in range(UPGRADERS)
        ]
        for process in processes:
            process.start()
        try:
            start.wait(timeout=DEADLINE)
            for process in processes:
                process.join(timeout=DEADLINE)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
        assert [process.exitcode for process in processes] == [0] * UPGRADERS
        assert_schema_once(bare)
        with bare.begin() as conn:
            assert eventstore.append(conn, 1, 0, [new_event()]).positions == (1,)


class TestCheckSchema:
    """check_schema tells a missing or foreign schema apart from the expected one."""

    def test_empty_database_is_schema_missing(self, bare: Engine) -> None:
        """A database without the schema raises SchemaMissing."""
        with bare.connect() as conn, pytest.raises(SchemaMissing, match="upgrade"):
            eventstore.check_schema(conn)

    def test_version_table_without_a_row_is_schema_missing(self, bare: Engine) -> None:
        """An emptied version table counts as no schema."""
        eventstore.upgrade(bare)
        with bare.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_alembic_version"))
        with bare.connect() as conn, pytest.raises(SchemaMissing):
            eventstore.check_schema(conn)

    def test_unknown_revision_is_schema_too_new(self, bare: Engine) -> None:
        """A version table holding a revision this code does not know raises SchemaTooNew."""
        eventstore.upgrade(bare)
        with bare.begin() as conn:
            conn.execute(sa.text("UPDATE mastertrail_alembic_version SET version_num = 'f00d'"))
        with bare.connect() as conn, pytest.raises(SchemaTooNew) as caught:
            eventstore.check_schema(conn)
        assert isinstance(caught.value, eventstore.RegistryError)
        assert "f00d" in str(caught.value)

    def test_current_schema_passes(self, engine: Engine) -> None:
        """An upgraded database passes check_schema."""
        with engine.connect() as conn:
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
        with bare.begin() as conn:  # format 2 stores every id: these are version 4 ones
            eventstore.append(conn, 1, 0, [new_event(), new_event()])
            eventstore.append(conn, 2, 0, [new_event()])
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
