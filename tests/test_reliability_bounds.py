"""Bounded waits and pinned isolation: a frozen lock holder costs a call seconds, then
StoreUnavailable; a database whose default isolation is stricter than the log needs
changes nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event

import pytest
import sqlalchemy as sa

import commands.retry
import eventstore
from eventstore import session
from eventstore.engine import begin_write
from eventstore.store import lock_head
from mastertrail import Registry, StoreUnavailable
from tests.conftest import FakeClock, Server
from tests.reliability_support import SPAWN, wait_until

#: A call's bound on PostgreSQL and MariaDB (docs/reliability.rst): the retries' time, the
#: last attempt's lock wait, and slack for a loaded machine.
CALL_BOUND = commands.retry.RETRY_FOR + session.LOCK_WAIT + 5


def hold_the_head_lock(url: str, holding: Event) -> None:
    """Lock the log's head row, say so, and wait (to be frozen with SIGSTOP)."""
    engine = eventstore.create_engine(url)
    with engine.connect() as conn:
        conn.begin()
        lock_head(conn)
        holding.set()
        threading.Event().wait()


@pytest.fixture
def frozen_holder(db_url: str) -> Iterator[Callable[[], BaseProcess]]:
    """Start a process holding the head lock and SIGSTOP it; killed after the test."""
    started: list[BaseProcess] = []

    def start() -> BaseProcess:
        holding = SPAWN.Event()
        holder = SPAWN.Process(target=hold_the_head_lock, args=(db_url, holding))
        started.append(holder)
        holder.start()
        wait_until(holding.is_set, "the holder to lock the head row", timeout=60)
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGSTOP)
        return holder

    yield start
    for holder in started:
        if holder.pid is not None and holder.is_alive():
            os.kill(holder.pid, signal.SIGKILL)
            os.kill(holder.pid, signal.SIGCONT)
        holder.join(30)


def call_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """Run ``call`` in a thread; the exception it raised (None if it returned). Fails the
    test if it has not finished after ``seconds``."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"the call was still waiting after {seconds} s"
    return outcome[0]


class TestFrozenLockHolder:
    @pytest.mark.slow
    @pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
    def test_a_write_ends_in_store_unavailable_within_the_bound(
        self, registry: Registry, frozen_holder: Callable[[], BaseProcess]
    ) -> None:
        """With the head lock held by a stopped process, a heartbeat and a registration
        each raise StoreUnavailable within the documented bound, writing nothing; once the
        holder is gone the same registry's next call goes through."""
        master_id = registry.find_master_id("frozen:/srv")
        holder = frozen_holder()
        for call in (
            lambda: registry.set_master_state(master_id, True),
            lambda: registry.find_master_id("new:/srv"),
        ):
            started = time.monotonic()
            error = call_within(CALL_BOUND, call)
            assert isinstance(error, StoreUnavailable), error
            assert time.monotonic() - started >= session.LOCK_WAIT
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        os.kill(holder.pid, signal.SIGCONT)
        holder.join(30)
        assert [e.type for e in registry.events()] == ["master.registered"]
        assert registry.set_master_state(master_id, True) is True
        assert registry.verify().ok

    @pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
    def test_the_session_lock_wait_is_set_on_a_foreign_engine(
        self, db_url: str, registry: Registry
    ) -> None:
        """On an engine mastertrail did not make (Buildbot's), each write transaction
        waits for a lock LOCK_WAIT seconds, not the server's default."""
        foreign = sa.create_engine(db_url)
        with foreign.connect() as conn:
            begin_write(conn)
            if conn.dialect.name == "postgresql":
                found = conn.exec_driver_sql("SHOW lock_timeout").scalar()
                assert found == f"{session.LOCK_WAIT}s"
            else:
                found = conn.exec_driver_sql("SELECT @@innodb_lock_wait_timeout").scalar()
                assert found == session.LOCK_WAIT
            conn.rollback()
        foreign.dispose()


@contextlib.contextmanager
def default_isolation(server: Server, level: str) -> Iterator[None]:
    """The PostgreSQL test database's default isolation level, for new sessions."""
    with server.admin.connect() as conn:
        conn.exec_driver_sql(
            f"ALTER DATABASE {server.name} SET default_transaction_isolation = '{level}'"
        )
    try:
        yield
    finally:
        with server.admin.connect() as conn:
            conn.exec_driver_sql(
                f"ALTER DATABASE {server.name} RESET default_transaction_isolation"
            )


def heartbeating(url: str, clock: FakeClock, stop: threading.Event, errors: list[str]) -> None:
    """A master checking in until ``stop`` is set."""
    registry = Registry(url, clock=clock, actor=f"beat-{threading.get_ident()}")
    master_id = registry.find_master_id(f"beat-{threading.get_ident()}")
    try:
        while not stop.is_set():
            registry.set_master_state(master_id, True)
    except Exception as error:
        errors.append(repr(error))
    finally:
        registry.close()


class TestStricterDefaultIsolation:
    @pytest.mark.slow
    @pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
    @pytest.mark.parametrize("level", ["repeatable read", "serializable"])
    @pytest.mark.parametrize("foreign", [False, True], ids=["own-engine", "foreign-engine"])
    def test_verify_and_rebuild_beside_heartbeats(
        self,
        backend: str,
        servers: dict[str, Server | str],
        registry: Registry,
        db_url: str,
        clock: FakeClock,
        level: str,
        foreign: bool,
    ) -> None:
        """With the database's default at REPEATABLE READ or SERIALIZABLE (on MariaDB: its
        sessions'), verify and rebuild beside two heartbeating masters succeed, and so do
        the heartbeats: mastertrail pins READ COMMITTED and retries conflicts."""
        server = servers[backend]
        assert isinstance(server, Server)
        engine = sa.create_engine(db_url) if foreign else eventstore.create_engine(db_url)
        if backend == "mysql":
            mysql_level = level.upper()

            @sa.event.listens_for(engine, "connect", insert=True)  # as a server default would
            def stricter(dbapi_connection: object, _record: object) -> None:
                cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
                cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {mysql_level}")
                cursor.close()

            isolation: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        else:
            isolation = default_isolation(server, level)
        with isolation:
            checker = Registry(engine, clock=clock, actor="checker")
            stop, errors = threading.Event(), []
            beats = [
                threading.Thread(target=heartbeating, args=(db_url, clock, stop, errors))
                for _ in range(2)
            ]
            for beat in beats:
                beat.start()
            try:
                wait_until(lambda: len(checker.get_masters()) == 2, "the masters to start")
                for _ in range(8):
                    assert checker.verify().ok
                    checker.rebuild()
            finally:
                stop.set()
                for beat in beats:
                    beat.join(60)
            assert errors == []
            assert checker.verify().ok
            checker.close()
