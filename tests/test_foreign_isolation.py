"""mastertrail's transactions on an engine it did not make (Buildbot's): READ COMMITTED for
its own statements, the connection handed back at the level its owner gave it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eventstore import session
from eventstore.engine import begin_write
from mastertrail import Registry
from tests.conftest import FakeClock

SERVERS = ["postgresql", "mysql"]


@pytest.fixture
def foreign(backend: str, db_url: str) -> Iterator[sa.Engine]:
    """An engine of someone else's with one connection, whose sessions run at REPEATABLE
    READ (the database's default on PostgreSQL, the session's on MariaDB, as a server
    default would): every transaction of this test meets the same connection."""
    admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    name = sa.make_url(db_url).database
    if backend == "postgresql":
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"ALTER DATABASE {name} SET default_transaction_isolation = 'repeatable read'"
            )
    engine = sa.create_engine(db_url, pool_size=1, max_overflow=0)
    if backend == "mysql":

        @sa.event.listens_for(engine, "connect", insert=True)
        def stricter(dbapi_connection: Any, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.close()

    try:
        yield engine
    finally:
        engine.dispose()
        if backend == "postgresql":
            with admin.connect() as conn:
                conn.exec_driver_sql(f"ALTER DATABASE {name} RESET default_transaction_isolation")
        admin.dispose()


@pytest.fixture
def registry_on(foreign: sa.Engine, clock: FakeClock) -> Iterator[Registry]:
    registry = Registry(foreign, clock=clock, actor="foreign")
    registry.upgrade()
    yield registry
    registry.close()


def _sees_a_commit_made_meanwhile(conn: sa.Connection, other: Registry, master_id: int) -> bool:
    """Whether a second read of ``conn``'s transaction sees a check-in committed by
    ``other`` after the first read."""
    count = sa.text("SELECT count(*) FROM mastertrail_events")
    before = conn.execute(count).scalar_one()
    other.set_master_state(master_id, True)
    return bool(conn.execute(count).scalar_one() != before)


@pytest.mark.parametrize("backend", SERVERS, indirect=True)
class TestForeignEngineIsolation:
    def test_a_transaction_of_mastertrail_reads_committed_rows(
        self, registry_on: Registry, db_url: str, clock: FakeClock
    ) -> None:
        """A write transaction mastertrail runs on the foreign engine sees what another
        process committed during it (READ COMMITTED), though the session is at REPEATABLE
        READ."""
        master_id = registry_on.find_master_id("a")
        other = Registry(db_url, clock=clock, actor="other")
        try:
            with registry_on.engine.connect() as conn:
                begin_write(conn)
                assert _sees_a_commit_made_meanwhile(conn, other, master_id)
                conn.rollback()
        finally:
            other.close()

    def test_every_transaction_of_a_connection_is_isolated(
        self, registry_on: Registry, db_url: str, clock: FakeClock
    ) -> None:
        """The level holds for each transaction of a connection, also after a commit and a
        rollback on it (a command's retry runs in a new transaction of the same
        connection)."""
        master_id = registry_on.find_master_id("a")
        other = Registry(db_url, clock=clock, actor="other")
        try:
            with registry_on.engine.connect() as conn:
                for end in (sa.Connection.commit, sa.Connection.rollback, sa.Connection.commit):
                    begin_write(conn)
                    assert _sees_a_commit_made_meanwhile(conn, other, master_id)
                    end(conn)
        finally:
            other.close()

    def test_the_connection_goes_back_at_its_own_level(
        self, registry_on: Registry, foreign: sa.Engine, db_url: str, clock: FakeClock
    ) -> None:
        """After mastertrail's heartbeat, the owner's next transaction on the same
        connection runs at the session's REPEATABLE READ: a snapshot that does not see a
        commit made during it."""
        master_id = registry_on.find_master_id("a")
        assert registry_on.set_master_state(master_id, True) is True
        clock.advance(60)
        registry_on.set_master_state(master_id, True)
        other = Registry(db_url, clock=clock, actor="other")
        try:
            with foreign.connect() as conn:
                assert not _sees_a_commit_made_meanwhile(conn, other, master_id)
                conn.rollback()
        finally:
            other.close()
        assert registry_on.verify().ok

    def test_a_connection_given_back_unused_keeps_its_level(
        self, registry_on: Registry, foreign: sa.Engine, db_url: str, clock: FakeClock
    ) -> None:
        """A connection mastertrail began a transaction on and gave back without a
        statement runs the owner's next transaction at the session's level."""
        master_id = registry_on.find_master_id("a")
        with registry_on.engine.connect() as conn:
            conn.begin()
        other = Registry(db_url, clock=clock, actor="other")
        try:
            with foreign.connect() as conn:
                assert not _sees_a_commit_made_meanwhile(conn, other, master_id)
                conn.rollback()
        finally:
            other.close()

    def test_the_lock_wait_is_still_bounded(self, registry_on: Registry) -> None:
        """A write transaction of mastertrail on the foreign engine waits for a lock at
        most LOCK_WAIT seconds."""
        with registry_on.engine.connect() as conn:
            begin_write(conn)
            if conn.dialect.name == "postgresql":
                found = conn.exec_driver_sql("SHOW lock_timeout").scalar()
                assert found == f"{session.LOCK_WAIT}s"
            else:
                found = conn.exec_driver_sql("SELECT @@innodb_lock_wait_timeout").scalar()
                assert found == session.LOCK_WAIT
            conn.rollback()

    def test_a_heartbeat_on_postgresql_is_one_round_trip(
        self, registry_on: Registry, foreign: sa.Engine, tmp_path: Path, clock: FakeClock
    ) -> None:
        """On PostgreSQL through psycopg, a heartbeat on the foreign engine takes one round
        trip: its one statement, a transaction of its own that sets its own lock wait,
        with no BEGIN before it and no COMMIT after; the session's lock wait is left as
        its owner set it."""
        if foreign.dialect.name != "postgresql":
            pytest.skip("psycopg's round trips")
        pq = pytest.importorskip("psycopg").pq
        master_id = registry_on.find_master_id("a")
        for _ in range(3):  # started, then heartbeats: their texts stored, then known
            registry_on.set_master_state(master_id, True)
            clock.advance(60)
        trace = tmp_path / "libpq.trace"
        with foreign.connect() as conn, trace.open("w") as out:  # the pool's one connection
            pgconn = conn.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
            conn.rollback()
            pgconn.trace(out.fileno())
            pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            conn.close()  # given back: the heartbeat meets it
            assert registry_on.set_master_state(master_id, True) is False
            pgconn.untrace()
        # A round trip ends with each simple Query the client sends, or with the Sync of an
        # extended one.
        sent = trace.read_text()
        ends = re.findall(r"^F\t\d+\t(Query|Sync)\b", sent, re.MULTILINE)
        assert ends == ["Sync"], sent
        assert "set_config" in sent
        assert "BEGIN" not in sent
        assert "COMMIT" not in sent
        with foreign.connect() as conn:
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
