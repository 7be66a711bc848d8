"""The Buildbot drop-in inside Buildbot's own test fixtures, on a real database.

Each test builds a fake master with a real DB connector (``make_master(wantDb=True)``) on
SQLite, PostgreSQL or MariaDB, with mastertrail's component installed, and Buildbot's test
reactor for time.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import freezegun
import pymysql
import pytest
import sqlalchemy as sa

pytest.importorskip("buildbot")

from buildbot.db import enginestrategy
from buildbot.db import masters as buildbot_masters
from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from twisted.internet import defer
from twisted.python import log
from twisted.trial import unittest

import mastertrail.buildbot
from mastertrail import RebuildRefused
from tests.conftest import empty_database

#: PyMySQL's command that sends a query.
COM_QUERY = 3
SOMETIME = 1_348_971_992
OTHERTIME = 1_008_971_992
UTC = dt.UTC


def at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=UTC)


@pytest.fixture(autouse=True)
def _database(request: pytest.FixtureRequest, servers: dict[str, Any], tmp_path: Any) -> None:
    """Give the test case a fresh database URL for its backend (in the Buildbot URL form)."""
    case = request.instance
    if case is None:
        return
    url = empty_database(case.backend, servers, tmp_path / "state.sqlite")
    if case.backend == "sqlite":
        case.db_url = url
        return
    engine = getattr(case, "storage_engine", "InnoDB")
    case.db_url = url + f"?storage_engine={engine}" if case.backend == "mysql" else url


class ComponentTests(TestReactorMixin):
    """Every sentence of the masters connector's reference page, through the component."""

    backend = "sqlite"
    db_url = ""

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        self.reactor.advance(SOMETIME)
        self.patch(
            buildbot_masters,
            "MastersConnectorComponent",
            mastertrail.buildbot.MastersConnectorComponent,
        )
        self.master = yield fakemaster.make_master(
            self, wantDb=True, wantData=True, db_url=self.db_url
        )
        self.db = self.master.db

    @defer.inlineCallbacks
    def every_call(self, masterid: int, rounds: int) -> Any:
        """``rounds`` times, a minute apart: ``masterid``'s heartbeat, ``getMaster``,
        ``findMasterId`` of its name and of a new one, and ``getMasters``, each answer
        checked."""
        ids = [masterid]
        for i in range(rounds):
            self.reactor.advance(60)
            assert (yield self.db.masters.setMasterState(masterid, True)) is False
            assert (yield self.db.masters.getMaster(masterid)).last_active == at(
                int(self.reactor.seconds())
            )
            assert (yield self.db.masters.findMasterId("some:master")) == masterid
            ids.append((yield self.db.masters.findMasterId(f"other:master{i}")))
            assert [m.id for m in (yield self.db.masters.getMasters())] == ids

    def events(self) -> list[Any]:
        return self.db.masters._registry.events() if self.db.masters._registry else []

    def rows(self, table: str) -> Any:
        return self.db.pool.do(
            lambda conn: conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1")).fetchall()
        )

    def test_component_is_installed(self) -> None:
        """make_master builds mastertrail's component, not Buildbot's."""
        assert isinstance(self.db.masters, mastertrail.buildbot.MastersConnectorComponent)

    @defer.inlineCallbacks
    def test_find_master_id_new(self) -> Any:
        """A new name is added inactive, last_active now, as Buildbot's own MasterModel."""
        masterid = yield self.db.masters.findMasterId("some:master")
        master = yield self.db.masters.getMaster(masterid)
        assert isinstance(master, buildbot_masters.MasterModel)
        assert master == buildbot_masters.MasterModel(masterid, "some:master", False, at(SOMETIME))
        types = [(e.type, e.metadata["actor"]) for e in list(self.events())]
        assert types == [("master.registered", self.master.name)]

    @defer.inlineCallbacks
    def test_find_master_id_existing(self) -> Any:
        """An existing name (a row written before mastertrail) returns its id."""
        yield self.db.insert_test_data([fakedb.Master(id=7, name="some:master")])
        assert (yield self.db.masters.findMasterId("some:master")) == 7

    @defer.inlineCallbacks
    def test_find_master_id_case_sensitive(self) -> Any:
        """Names differing only in case are two masters."""
        yield self.db.insert_test_data([fakedb.Master(id=7, name="some:master")])
        other = yield self.db.masters.findMasterId("some:Master")
        assert other != 7
        assert (yield self.db.masters.getMaster(other)).name == "some:Master"

    @defer.inlineCallbacks
    def test_set_state_true_when_inactive(self) -> Any:
        """Inactive to active returns True and moves last_active to now."""
        yield self.db.insert_test_data(
            [fakedb.Master(id=7, name="some:master", active=0, last_active=OTHERTIME)]
        )
        assert (yield self.db.masters.setMasterState(masterid=7, active=True))
        master = yield self.db.masters.getMaster(7)
        assert master == buildbot_masters.MasterModel(7, "some:master", True, at(SOMETIME))

    @defer.inlineCallbacks
    def test_set_state_true_when_active(self) -> Any:
        """Active to active returns False but moves last_active to now (a heartbeat)."""
        yield self.db.insert_test_data(
            [fakedb.Master(id=7, name="some:master", active=1, last_active=OTHERTIME)]
        )
        assert not (yield self.db.masters.setMasterState(masterid=7, active=True))
        assert (yield self.db.masters.getMaster(7)).last_active == at(SOMETIME)
        assert [e.type for e in self.events()] == ["master.adopted", "master.checked_in"]

    @defer.inlineCallbacks
    def test_set_state_false_when_active(self) -> Any:
        """Active to inactive returns True and leaves last_active as it was."""
        yield self.db.insert_test_data(
            [fakedb.Master(id=7, name="some:master", active=1, last_active=OTHERTIME)]
        )
        assert (yield self.db.masters.setMasterState(masterid=7, active=False))
        master = yield self.db.masters.getMaster(7)
        assert master == buildbot_masters.MasterModel(7, "some:master", False, at(OTHERTIME))

    @defer.inlineCallbacks
    def test_set_state_false_when_inactive(self) -> Any:
        """Inactive to inactive returns False and changes nothing."""
        yield self.db.insert_test_data(
            [fakedb.Master(id=7, name="some:master", active=0, last_active=OTHERTIME)]
        )
        assert not (yield self.db.masters.setMasterState(masterid=7, active=False))
        master = yield self.db.masters.getMaster(7)
        assert master == buildbot_masters.MasterModel(7, "some:master", False, at(OTHERTIME))

    @defer.inlineCallbacks
    def test_set_state_unknown_master(self) -> Any:
        """An unknown id returns False and writes nothing."""
        assert not (yield self.db.masters.setMasterState(masterid=99, active=True))
        assert list(self.events()) == []

    @defer.inlineCallbacks
    def test_set_state_false_deletes_links(self) -> Any:
        """Deactivation deletes the master's scheduler and change source links, not others'."""
        yield self.db.insert_test_data(
            [
                fakedb.Master(id=7, name="some:master", active=1, last_active=OTHERTIME),
                fakedb.Master(id=8, name="other:master", active=1, last_active=OTHERTIME),
                fakedb.Scheduler(id=21),
                fakedb.Scheduler(id=22, name="other"),
                fakedb.SchedulerMaster(schedulerid=21, masterid=7),
                fakedb.SchedulerMaster(schedulerid=22, masterid=8),
                fakedb.ChangeSource(id=31),
                fakedb.ChangeSourceMaster(changesourceid=31, masterid=7),
            ]
        )
        assert (yield self.db.masters.setMasterState(masterid=7, active=False))
        assert [tuple(r) for r in (yield self.rows("scheduler_masters"))] == [(22, 8)]
        assert list((yield self.rows("changesource_masters"))) == []

    @defer.inlineCallbacks
    def test_get_master_missing(self) -> Any:
        """getMaster of an unknown id is None."""
        assert (yield self.db.masters.getMaster(7)) is None

    @defer.inlineCallbacks
    def test_get_masters(self) -> Any:
        """getMasters returns every master as Buildbot's MasterModel."""
        yield self.db.insert_test_data(
            [
                fakedb.Master(id=7, name="some:master", active=0, last_active=SOMETIME),
                fakedb.Master(id=8, name="other:master", active=1, last_active=OTHERTIME),
            ]
        )
        masters = yield self.db.masters.getMasters()
        assert sorted(masters, key=lambda m: m.id) == [
            buildbot_masters.MasterModel(7, "some:master", False, at(SOMETIME)),
            buildbot_masters.MasterModel(8, "other:master", True, at(OTHERTIME)),
        ]

    @defer.inlineCallbacks
    def test_set_all_masters_active_long_time_ago(self) -> Any:
        """Every master becomes active at the epoch, committed, with one event each."""
        yield self.db.insert_test_data(
            [
                fakedb.Master(id=7, name="some:master", active=0, last_active=SOMETIME),
                fakedb.Master(id=8, name="other:master", active=1, last_active=OTHERTIME),
            ]
        )
        yield self.db.masters.setAllMastersActiveLongTimeAgo()
        rows = yield self.rows("masters")
        assert [(r.id, r.active, r.last_active) for r in rows] == [(7, 1, 0), (8, 1, 0)]
        forced = [e.master_id for e in self.events() if e.type == "master.housekeeping_forced"]
        assert forced == [7, 8]

    @defer.inlineCallbacks
    def test_rows_without_history_are_adopted_first(self) -> Any:
        """Rows inserted straight into masters get an adoption event before anything else."""
        yield self.db.insert_test_data(
            [fakedb.Master(id=7, name="some:master", active=1, last_active=OTHERTIME)]
        )
        yield self.db.masters.getMaster(7)  # first use: tables created, rows adopted
        yield self.db.insert_test_data(
            [fakedb.Master(id=9, name="late:master", active=0, last_active=OTHERTIME)]
        )
        self.reactor.advance(60)
        yield self.db.masters.setMasterState(masterid=9, active=True)
        trail = [(e.master_id, e.version, e.type, e.data.get("last_active")) for e in self.events()]
        assert trail == [
            (7, 1, "master.adopted", OTHERTIME),
            (9, 1, "master.adopted", OTHERTIME),
            (9, 2, "master.activated", SOMETIME + 60),
        ]

    @defer.inlineCallbacks
    def test_rebuild_deletes_no_row_buildbot_references(self) -> Any:
        """A master's row moved to another id that Buildbot's builder_masters then
        references makes rebuild refuse, naming the row, and keep every row; once the
        reference is gone the rebuild gives the row its id in the log back."""
        me = yield self.db.masters.findMasterId("some:master")

        def execute(statement: str) -> Any:
            def run(engine: sa.Engine) -> None:
                with engine.begin() as conn:
                    conn.execute(sa.text(statement))

            return self.db.pool.do_with_engine(run)

        yield execute(f"UPDATE masters SET id = 7 WHERE id = {me}")
        yield self.db.insert_test_data(
            [fakedb.Builder(id=1, name="b"), fakedb.BuilderMaster(id=1, builderid=1, masterid=7)]
        )
        registry = self.db.masters._registry
        with pytest.raises(RebuildRefused) as refused:
            yield self.db.pool.do_with_engine(lambda _engine: registry.rebuild())
        assert refused.value.row_id == 7
        assert "builder_masters.masterid" in str(refused.value)
        self.flushLoggedErrors(RebuildRefused)  # the DB pool logs what it hands on
        assert [row.id for row in (yield self.rows("masters"))] == [7]
        yield execute("DELETE FROM builder_masters")
        yield self.db.pool.do_with_engine(lambda _engine: registry.rebuild())
        assert [row.id for row in (yield self.rows("masters"))] == [me]
        assert registry.verify().ok

    @defer.inlineCallbacks
    def test_data_layer_drives_the_component(self) -> Any:
        """masterActive, expireMasters and masterStopped work through the component, and
        the log records who expired whom."""
        rtype = self.master.data.rtypes.master
        me = yield self.db.masters.findMasterId(self.master.name)
        other = yield self.db.masters.findMasterId("other:master")
        yield rtype.masterActive(name=self.master.name, masterid=me)
        yield rtype.masterActive(name="other:master", masterid=other)
        self.reactor.advance(11 * 60)
        yield rtype.masterActive(name=self.master.name, masterid=me)
        yield rtype.expireMasters()
        assert not (yield self.db.masters.getMaster(other)).active
        assert (yield self.db.masters.getMaster(me)).active
        yield rtype.masterStopped(name=self.master.name, masterid=me)
        assert not (yield self.db.masters.getMaster(me)).active
        deactivations = [
            (e.master_id, e.metadata["reason"], e.metadata["actor"])
            for e in self.events()
            if e.type == "master.deactivated"
        ]
        assert deactivations == [
            (other, "expired", self.master.name),
            (me, "stopped", self.master.name),
        ]
        assert self.db.masters._registry.verify().ok


class TestComponentSQLite(ComponentTests, unittest.TestCase):
    backend = "sqlite"

    def kept_connection(self) -> Any:
        """The driver connection the component keeps open for its calls."""
        reader = self.db.masters._kept
        with reader.connect() as conn:
            return conn.connection.dbapi_connection

    @defer.inlineCallbacks
    def test_closing_buildbots_connections_no_longer_checkpoints_the_log(self) -> Any:
        """Buildbot's NullPool closes its connection after every call; the component keeps
        one open, so SQLite no longer checkpoints and removes the write-ahead log at each
        close. The kept connection is closed when the reactor shuts down."""
        wal = Path(f"{sa.make_url(self.db_url).database}-wal")
        masterid = yield self.db.masters.findMasterId("some:master")
        for _ in range(3):
            yield self.db.masters.setMasterState(masterid, True)
        assert wal.exists()  # every close would have removed it
        assert wal.stat().st_size > 0
        driver_connection = self.kept_connection()
        self.reactor.fireSystemEvent("shutdown")
        assert self.db.masters._kept.pool.checkedin() == 0
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            driver_connection.cursor()

    @defer.inlineCallbacks
    def test_release_closes_the_kept_connection_before_shutdown(self) -> Any:
        """``release`` closes the kept connection while the reactor runs on; the component
        goes on working, and the shutdown after it finds nothing left to close."""
        masterid = yield self.db.masters.findMasterId("some:master")
        driver_connection = self.kept_connection()
        self.db.masters.release()
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            driver_connection.cursor()
        assert (yield self.db.masters.setMasterState(masterid, True)) is True
        assert (yield self.db.masters.getMaster(masterid)).active
        self.reactor.fireSystemEvent("shutdown")

    @defer.inlineCallbacks
    def test_calls_open_no_connection(self) -> Any:
        """The heartbeat, a new master's findMasterId, getMaster, getMasters and a known
        name's findMasterId run on the kept connection: no connection is opened for them,
        Buildbot's or the component's."""
        masterid = yield self.db.masters.findMasterId("some:master")
        yield self.db.masters.setMasterState(masterid, True)
        opened: list[str] = []
        for engine in (self.db.pool.engine, self.db.masters._kept):
            sa.event.listen(engine, "connect", lambda *_, url=str(engine.url): opened.append(url))
        yield self.every_call(masterid, rounds=5)
        assert opened == []
        assert self.db.masters._registry.verify().ok

    @defer.inlineCallbacks
    def test_reads_see_what_buildbots_connections_wrote(self) -> Any:
        """A row Buildbot's own connection changed is read as changed at once."""
        masterid = yield self.db.masters.findMasterId("some:master")
        assert not (yield self.db.masters.getMaster(masterid)).active

        def activate(conn: Any) -> None:
            conn.execute(sa.text("UPDATE masters SET active = 1 WHERE id = :id"), {"id": masterid})
            conn.commit()

        yield self.db.pool.do(activate)
        assert (yield self.db.masters.getMaster(masterid)).active

    @defer.inlineCallbacks
    def test_a_database_file_moved_into_place_is_read(self) -> Any:
        """A backup moved over the database file under the running master (a new file
        in its place) is what the reads answer from, not the file the kept connection
        opened first."""
        path = Path(sa.make_url(self.db_url).database or "")
        masterid = yield self.db.masters.findMasterId("some:master")
        backup = path.with_name("backup.sqlite")
        with sqlite3.connect(path) as source, sqlite3.connect(backup) as target:
            source.backup(target)
        yield self.db.masters.setMasterState(masterid, True)
        assert (yield self.db.masters.getMaster(masterid)).active
        backup.replace(path)
        for stale in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        assert not (yield self.db.masters.getMaster(masterid)).active

    @defer.inlineCallbacks
    def test_a_database_file_moved_into_place_is_written(self) -> Any:
        """A heartbeat after a backup was moved over the database file lands in the new
        file, chained onto the backup's log, not in the file the kept connection opened."""
        path = Path(sa.make_url(self.db_url).database or "")
        masterid = yield self.db.masters.findMasterId("some:master")
        yield self.db.masters.setMasterState(masterid, True)
        backup = path.with_name("backup.sqlite")
        with sqlite3.connect(path) as source, sqlite3.connect(backup) as target:
            source.backup(target)
        with sqlite3.connect(backup) as conn:
            (backed_up,) = conn.execute("SELECT count(*) FROM mastertrail_events").fetchone()
        backup.replace(path)
        for stale in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        self.reactor.advance(60)
        assert (yield self.db.masters.setMasterState(masterid, True)) is False
        with sqlite3.connect(path) as conn:
            (events,) = conn.execute("SELECT count(*) FROM mastertrail_events").fetchone()
            (seconds,) = conn.execute(
                "SELECT last_active FROM masters WHERE id = ?", (masterid,)
            ).fetchone()
        assert (events, seconds) == (backed_up + 1, SOMETIME + 60)
        assert self.db.masters._registry.verify().ok


class TestComponentPostgreSQL(ComponentTests, unittest.TestCase):
    backend = "postgresql"


class TestComponentMariaDB(ComponentTests, unittest.TestCase):
    backend = "mysql"

    def kill(self, connection_id: int) -> Any:
        """End the server's connection ``connection_id`` from one of Buildbot's."""
        return self.db.pool.do(
            lambda conn: conn.exec_driver_sql(f"KILL CONNECTION {connection_id}").close()
        )

    def kept_connection_id(self) -> int:
        """The server's id of the connection the component's engine lends next."""
        with self.db.masters._kept.connect() as conn:
            return int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one())

    @defer.inlineCallbacks
    def test_calls_borrow_none_of_buildbots_connections(self) -> Any:
        """Heartbeats, reads and a new master's findMasterId run on the component's own
        connection: none of them borrows one of Buildbot's, each of which Buildbot's MySQL
        engine checks with a ``SELECT 1`` first, and the answers are those of the log."""
        masterid = yield self.db.masters.findMasterId("some:master")
        yield self.db.masters.setMasterState(masterid, True)
        borrowed: list[object] = []
        sa.event.listen(self.db.pool.engine.pool, "checkout", lambda *_: borrowed.append(_))
        yield self.every_call(masterid, rounds=3)
        assert borrowed == []
        assert self.db.masters._registry.verify().ok

    @defer.inlineCallbacks
    def test_a_heartbeat_is_one_round_trip(self) -> Any:
        """A remembered master's heartbeat sends the server one command (its statement
        that commits itself, executed by name); a read two (the query, the ROLLBACK)."""
        masterid = yield self.db.masters.findMasterId("some:master")
        yield self.db.masters.setMasterState(masterid, True)
        for _ in range(3):
            self.reactor.advance(60)
            yield self.db.masters.setMasterState(masterid, True)  # its texts known, prepared
        sent: list[tuple[int, str]] = []
        real = pymysql.connections.Connection._execute_command

        def spy(connection: Any, command: int, sql: Any) -> Any:
            text = sql if isinstance(sql, str) else bytes(sql).decode("utf-8", "replace")
            sent.append((command, text))
            return real(connection, command, sql)

        self.patch(pymysql.connections.Connection, "_execute_command", spy)
        pinged = self.patch_ping()
        self.reactor.advance(60)
        assert (yield self.db.masters.setMasterState(masterid, True)) is False
        assert [command for command, _ in sent] == [COM_QUERY]
        assert sent[0][1].startswith("EXECUTE mastertrail_")
        del sent[:]
        assert (yield self.db.masters.getMaster(masterid)).active
        assert [text.split()[0] for _, text in sent] == ["SELECT", "ROLLBACK"]
        assert pinged == []

    def patch_ping(self) -> list[object]:
        """Record PyMySQL's pings (a ``COM_PING`` it sends without ``_execute_command``)."""
        pinged: list[object] = []
        real = pymysql.connections.Connection.ping

        def ping(connection: Any, *args: Any, **kwargs: Any) -> Any:
            pinged.append(args)
            return real(connection, *args, **kwargs)

        self.patch(pymysql.connections.Connection, "ping", ping)
        return pinged

    @defer.inlineCallbacks
    def test_a_connection_the_server_killed_is_replaced_at_once(self) -> Any:
        """The server ends the component's connection between two heartbeats (``KILL``):
        the next heartbeat fails on it, runs again at once on a new connection, without
        the component's pause, and lands once."""
        masterid = yield self.db.masters.findMasterId("some:master")
        yield self.db.masters.setMasterState(masterid, True)
        pauses: list[float] = []
        self.patch(mastertrail.buildbot, "pause", pauses.append)
        before = len(list(self.events()))
        killed = self.kept_connection_id()
        yield self.kill(killed)
        self.reactor.advance(60)
        assert (yield self.db.masters.setMasterState(masterid, True)) is False
        assert (yield self.db.masters.getMaster(masterid)).last_active == at(
            int(self.reactor.seconds())
        )
        assert pauses == []
        assert len(list(self.events())) == before + 1
        assert self.kept_connection_id() != killed
        assert self.db.masters._registry.verify().ok

    @defer.inlineCallbacks
    def test_a_read_on_a_killed_connection_is_answered(self) -> Any:
        """A read on a connection the server ended is run again at once and answered."""
        masterid = yield self.db.masters.findMasterId("some:master")
        pauses: list[float] = []
        self.patch(mastertrail.buildbot, "pause", pauses.append)
        killed = self.kept_connection_id()
        yield self.kill(killed)
        assert (yield self.db.masters.getMaster(masterid)).name == "some:master"
        assert pauses == []

    def test_connections_idle_longer_than_max_idle_are_replaced(self) -> None:
        """The component's connections are recycled after the URL's ``max_idle``, as
        Buildbot's own are (before a server's ``wait_timeout`` ends them)."""
        url = f"{self.db_url}&max_idle=600"
        buildbots = enginestrategy.create_engine(url, basedir=".")
        kept = mastertrail.buildbot._kept_mysql(buildbots)
        assert kept is not None

        def connection_id() -> int:
            with kept.connect() as conn:
                return int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one())

        try:
            with freezegun.freeze_time() as frozen:
                first = connection_id()
                frozen.tick(599)
                assert connection_id() == first
                frozen.tick(2)
                assert connection_id() != first
        finally:
            kept.dispose()
            buildbots.dispose()


class TestMyISAMWarning(TestReactorMixin, unittest.TestCase):
    """Buildbot's MySQL default, MyISAM, cannot keep the log and the view atomic."""

    backend = "mysql"
    storage_engine = "MyISAM"
    db_url = ""

    @defer.inlineCallbacks
    def test_warns_about_myisam(self) -> Any:
        """On a MyISAM masters table the component logs how to switch to InnoDB."""
        self.setup_test_reactor()
        self.patch(
            buildbot_masters,
            "MastersConnectorComponent",
            mastertrail.buildbot.MastersConnectorComponent,
        )
        messages: list[str] = []
        observer = lambda event: messages.append(" ".join(map(str, event.get("message", ()))))  # noqa: E731
        log.addObserver(observer)
        self.addCleanup(log.removeObserver, observer)
        master = yield fakemaster.make_master(self, wantDb=True, db_url=self.db_url)
        yield master.db.masters.getMasters()
        assert any("uses MyISAM" in m and "storage_engine=InnoDB" in m for m in messages)


def test_a_lost_connection_is_found_anywhere_in_the_chain() -> None:
    """An error raised from a DBAPI error whose connection SQLAlchemy invalidated is a lost
    connection, however deep; another error is not, and a chain that loops ends."""
    invalidated = sa.exc.OperationalError("SELECT 1", {}, Exception("gone away"))
    invalidated.connection_invalidated = True
    outer = RuntimeError("unavailable")
    outer.__cause__ = invalidated
    assert mastertrail.buildbot._connection_lost(outer)
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert not mastertrail.buildbot._connection_lost(first)
    assert not mastertrail.buildbot._connection_lost(
        sa.exc.OperationalError("SELECT 1", {}, Exception("locked"))
    )


def test_another_mysql_driver_keeps_buildbots_engine() -> None:
    """A Buildbot engine on another MySQL driver than PyMySQL (``mysql://`` names
    mysqlclient) gets no engine of the component's own: its calls stay on Buildbot's."""
    for url in ("mysql://root@127.0.0.1/test", "mysql+mysqldb://root@127.0.0.1/test"):
        buildbots = SimpleNamespace(url=sa.make_url(url), pool=SimpleNamespace(_recycle=3600))
        assert mastertrail.buildbot._kept_mysql(buildbots) is None  # type: ignore[arg-type]
