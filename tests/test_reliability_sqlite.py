"""SQLite contention: many processes on one database file. "database is locked" is a
bounded wait (the busy timeout) that ends in the call going through, or, past the bound,
in StoreUnavailable; never a raw driver error and never a lost write."""

from __future__ import annotations

import sqlite3
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import pytest

import eventstore.engine
from eventstore import CODEC, StoreUnavailable
from mastertrail import Registry
from tests.conftest import FakeClock
from tests.reliability_support import (
    DEADLINE,
    SPAWN,
    dump,
    get,
    quiet_logging,
    sized,
    stop_all,
    wait_until,
)

pytestmark = pytest.mark.slow

#: Processes writing to the one file at once, and calls each makes.
WRITERS = sized(8, 16)
CALLS = sized(30, 400)
#: Seconds the lock hog holds the write lock each time it takes it, and lets it go.
HOG_HOLD = 0.15
HOG_PAUSE = 0.1
T0 = 1_700_000_000


# -- what each process runs (module level, so that 'spawn' can import it) --------------------


def write_and_read(path: str, number: int, start: Any, results: Any) -> None:
    """Register, then alternate check-ins with reads of the view and the log; report every
    failure by its type instead of raising."""
    quiet_logging()
    clock = FakeClock(T0)
    name = f"writer-{number}"
    registry = Registry(f"sqlite:///{path}", clock=clock, actor=name)
    failures: list[str] = []
    check_ins: list[int] = []
    master_id = None
    start.wait(DEADLINE)
    try:
        master_id = registry.find_master_id(name)
        for call in range(CALLS):
            clock.advance(1)
            try:
                registry.set_master_state(master_id, True)
                check_ins.append(int(clock.now))
                if call % 10 == 0:
                    registry.get_masters()
                    sum(1 for _ in registry.events(after=max(0, call * 5)))
            except Exception as error:
                failures.append(f"{type(error).__module__}.{type(error).__name__}: {error}")
    except Exception:
        failures.append(traceback.format_exc())
    finally:
        registry.close()
    results.put((name, master_id, check_ins, failures))


def hog_the_lock(path: str, start: Any, stop: Any) -> None:
    """Take SQLite's write lock and hold it HOG_HOLD seconds, over and over (HOG_PAUSE
    apart), until told to stop, so that the writers keep finding the database locked."""
    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    start.wait(DEADLINE)
    while not stop.is_set():
        connection.execute("BEGIN IMMEDIATE")
        time.sleep(HOG_HOLD)
        connection.execute("COMMIT")
        time.sleep(HOG_PAUSE)
    connection.close()


def hold_the_lock(path: str, holding: Any, release: Any) -> None:
    """Take SQLite's write lock, say so, and keep it until told to release it."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    holding.set()
    release.wait(DEADLINE)
    connection.execute("ROLLBACK")
    connection.close()


# -- the parent's side -----------------------------------------------------------------------


@pytest.fixture
def sqlite_path(tmp_path: Path, clock: FakeClock) -> Path:
    """A SQLite file with mastertrail's schema."""
    path = tmp_path / "contended.sqlite"
    registry = Registry(f"sqlite:///{path}", clock=clock, actor="tester")
    registry.upgrade()
    registry.close()
    return path


@pytest.fixture
def processes() -> Iterator[list[SpawnProcess]]:
    """The processes a test starts; killed if the test fails half-way."""
    started: list[SpawnProcess] = []
    yield started
    stop_all(started)


class TestManyProcessesOnOneFile:
    def test_locked_database_is_waited_out_and_nothing_is_lost(
        self, sqlite_path: Path, processes: list[SpawnProcess], clock: FakeClock
    ) -> None:
        """WRITERS processes check in and read while another keeps taking the write lock:
        every call goes through (no "database is locked", no error of any type) and every
        check-in is in the log exactly once."""
        start = SPAWN.Barrier(WRITERS + 1)
        stop = SPAWN.Event()
        results = SPAWN.Queue()
        hog = SPAWN.Process(target=hog_the_lock, args=(str(sqlite_path), start, stop))
        processes.append(hog)
        for number in range(WRITERS):
            processes.append(
                SPAWN.Process(
                    target=write_and_read, args=(str(sqlite_path), number, start, results)
                )
            )
        for process in processes:
            process.start()
        reports = [get(results, "the writers") for _ in range(WRITERS)]
        stop.set()
        for process in processes:
            process.join(DEADLINE)
            assert process.exitcode == 0
        registry = Registry(f"sqlite:///{sqlite_path}", clock=clock, actor="tester")
        for name, master_id, check_ins, failures in reports:
            assert failures == [], name
            assert len(check_ins) == CALLS
            trail = registry.history(master_id)
            assert trail[0].data["name"] == name
            assert [CODEC.decode(e).last_active for e in trail[1:]] == check_ins
        positions = Counter(e.position for e in registry.events())
        assert set(positions.values()) == {1}
        assert len(positions) == WRITERS * (1 + CALLS)
        assert registry.verify().ok
        registry.close()


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """A busy timeout of half a second for the engines created in this test (the shipped
    one is eventstore.engine.SQLITE_BUSY_TIMEOUT, 30 s)."""
    monkeypatch.setattr(eventstore.engine, "SQLITE_BUSY_TIMEOUT", 0.5)
    return 0.5


class TestLockHeldPastTheBusyTimeout:
    def test_write_fails_with_store_unavailable_then_succeeds(
        self,
        sqlite_path: Path,
        processes: list[SpawnProcess],
        clock: FakeClock,
        short_busy_timeout: float,
    ) -> None:
        """While another process holds the write lock longer than the busy timeout, a write
        raises StoreUnavailable (not the driver's OperationalError), after waiting at least
        the timeout, and writes nothing; once the lock is released the same registry's next
        call goes through."""
        url = f"sqlite:///{sqlite_path}"
        registry = Registry(url, clock=clock, actor="tester")
        master_id = registry.find_master_id("waiting:/srv")
        before = dump(registry.engine)
        holding, release = SPAWN.Event(), SPAWN.Event()
        holder = SPAWN.Process(target=hold_the_lock, args=(str(sqlite_path), holding, release))
        processes.append(holder)
        holder.start()
        wait_until(holding.is_set, "the other process to take the lock")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            registry.set_master_state(master_id, True)
        assert time.monotonic() - started >= short_busy_timeout * 0.9
        release.set()
        holder.join(DEADLINE)
        assert dump(registry.engine) == before
        assert registry.set_master_state(master_id, True) is True
        assert registry.get_master(master_id).active  # type: ignore[union-attr]
        assert registry.verify().ok
        registry.close()

    def test_reads_are_not_blocked_by_a_writer(
        self,
        sqlite_path: Path,
        processes: list[SpawnProcess],
        clock: FakeClock,
        short_busy_timeout: float,
    ) -> None:
        """While another process holds the write lock, a new registry on the file reads the
        view, the log and a master's history without waiting for it (WAL)."""
        seed = Registry(f"sqlite:///{sqlite_path}", clock=clock, actor="tester")
        master_id = seed.find_master_id("reader:/srv")
        seed.close()
        holding, release = SPAWN.Event(), SPAWN.Event()
        holder = SPAWN.Process(target=hold_the_lock, args=(str(sqlite_path), holding, release))
        processes.append(holder)
        holder.start()
        wait_until(holding.is_set, "the other process to take the lock")
        try:
            registry = Registry(f"sqlite:///{sqlite_path}", clock=clock, actor="reader")
            assert [m.name for m in registry.get_masters()] == ["reader:/srv"]
            assert [e.type for e in registry.events()] == ["master.registered"]
            assert len(registry.history(master_id)) == 1
            assert registry.masters_as_of(1)[0].id == master_id
            registry.close()
        finally:
            release.set()
            holder.join(DEADLINE)
