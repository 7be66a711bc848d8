"""The Buildbot component's engines of its own, inside Buildbot's own test fixtures: the
one connection it keeps open on a SQLite file, and on MariaDB the connections it lends
without Buildbot's ``SELECT 1`` (``docs/buildbot.rst``)."""

from __future__ import annotations

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
from twisted.internet import defer
from twisted.trial import unittest

import mastertrail.buildbot
from tests.test_buildbot_component import SOMETIME, ComponentCase, _database, at

__all__ = ["_database"]

#: PyMySQL's command that sends a query.
COM_QUERY = 3


class TestKeptSQLiteConnection(ComponentCase, unittest.TestCase):
    """On a SQLite file the component's calls run on one connection it keeps open."""

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


class TestOwnMariaDBEngine(ComponentCase, unittest.TestCase):
    """On MariaDB the component's calls run on connections of its own, lent without a
    ping."""

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
