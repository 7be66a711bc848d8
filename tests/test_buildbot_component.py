"""The Buildbot drop-in inside Buildbot's own test fixtures, on a real database.

Each test builds a fake master with a real DB connector (``make_master(wantDb=True)``) on
SQLite, PostgreSQL or MariaDB, with mastertrail's component installed, and Buildbot's test
reactor for time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

pytest.importorskip("buildbot")

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


class ComponentCase(TestReactorMixin):
    """A fake master on a real database of ``backend``, with the component installed."""

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


class ComponentTests(ComponentCase):
    """Every sentence of the masters connector's reference page, through the component."""

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


class TestComponentPostgreSQL(ComponentTests, unittest.TestCase):
    backend = "postgresql"


class TestComponentMariaDB(ComponentTests, unittest.TestCase):
    backend = "mysql"


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
