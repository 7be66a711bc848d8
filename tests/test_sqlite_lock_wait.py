"""A SQLite writer waiting for the write lock tries again at short, growing pauses of its
own (:func:`eventstore.engine.begin_immediate`) instead of SQLite's busy handler, whose
pauses are 1, 2, 5, 10 ... ms; every other statement keeps the busy timeout."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

import eventstore.engine
from eventstore.engine import LOCK_POLL, SQLITE_BUSY_TIMEOUT, begin_immediate
from mastertrail import Registry
from tests.conftest import FakeClock


def busy() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    return error


class Driver:
    """An ``execute`` that finds the lock held the first ``held`` times."""

    def __init__(self, held: int, error: Exception | None = None) -> None:
        self.held, self.error = held, error
        self.sent: list[str] = []

    def __call__(self, sql: str) -> None:
        self.sent.append(sql)
        if sql != "BEGIN IMMEDIATE":
            return
        if self.error is not None:
            raise self.error
        if self.held:
            self.held -= 1
            raise busy()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses a writer makes, on a clock they move."""
    made: list[float] = []
    now = [0.0]

    def pause(seconds: float) -> None:
        made.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(eventstore.engine, "pause", pause)
    monkeypatch.setattr(eventstore.engine, "monotonic", lambda: now[0])
    return made


RESTORED = f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}"


def test_a_held_lock_is_tried_again_at_growing_pauses(pauses: list[float]) -> None:
    driver = Driver(held=8)
    begin_immediate(driver)
    first, longest = LOCK_POLL
    expected = [min(first * 2**n, longest) for n in range(8)]
    assert pauses == pytest.approx(expected)
    assert max(pauses) == longest
    assert driver.sent == ["PRAGMA busy_timeout=0", *["BEGIN IMMEDIATE"] * 9, RESTORED]


def test_a_free_lock_is_taken_at_once(pauses: list[float]) -> None:
    driver = Driver(held=0)
    begin_immediate(driver)
    assert pauses == []
    assert driver.sent == ["PRAGMA busy_timeout=0", "BEGIN IMMEDIATE", RESTORED]


def test_another_error_is_raised_at_once(pauses: list[float]) -> None:
    driver = Driver(held=0, error=sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        begin_immediate(driver)
    assert pauses == []
    assert driver.sent[-1] == RESTORED


def test_the_wait_ends_at_the_busy_timeout(
    pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventstore.engine, "SQLITE_BUSY_TIMEOUT", 0.05)
    driver = Driver(held=10**6)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_immediate(driver)
    assert 0.05 - LOCK_POLL[1] <= sum(pauses) <= 0.05
    assert driver.sent[-1] == "PRAGMA busy_timeout=50"


def test_a_write_gets_the_lock_at_the_next_try_after_its_release(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a real file held by another connection: the registry's write fails no try with
    SQLite's busy handler (its connection's busy timeout is 0 while it tries), takes the
    lock at the try after the holder commits, and leaves the busy timeout as it was."""
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    registry = Registry(url, clock=clock, actor="tester")
    registry.upgrade()
    master_id = registry.find_master_id("m")
    holder = sqlite3.connect(tmp_path / "log.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    made: list[float] = []

    def pause(seconds: float) -> None:
        made.append(seconds)
        if len(made) == 3:
            holder.execute("COMMIT")

    monkeypatch.setattr(eventstore.engine, "pause", pause)
    try:
        assert registry.set_master_state(master_id, True) is True
        assert len(made) == 3  # three tries found it held, the fourth took it
        with registry.engine.connect() as conn:
            timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert timeout == int(SQLITE_BUSY_TIMEOUT * 1000)
        assert registry.verify().ok
    finally:
        holder.close()
        registry.close()


def test_an_engine_made_elsewhere_waits_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """:func:`eventstore.engine.begin_write` on an engine configured elsewhere (Buildbot's)."""
    path = tmp_path / "other.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    made: list[float] = []

    def pause(seconds: float) -> None:
        made.append(seconds)
        holder.execute("COMMIT")

    monkeypatch.setattr(eventstore.engine, "pause", pause)
    try:
        with engine.connect() as conn:
            eventstore.engine.begin_write(conn)
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            conn.commit()
            timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert made == [LOCK_POLL[0]]
        assert timeout == int(SQLITE_BUSY_TIMEOUT * 1000)
        assert holder.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        holder.close()
        engine.dispose()
