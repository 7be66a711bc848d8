"""SQLite transactions on an engine made by ``eventstore.create_engine``: a write takes the
write lock when it begins, a read (``reading``) takes none and keeps one snapshot, and
neither carries on a transaction the driver still has open."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore import engine as engine_module
from eventstore import sqlitefile
from eventstore.engine import create_engine, reading


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "engine.sqlite"


@pytest.fixture
def engine(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    # A lock wait that should not happen fails in a second, not in the default 30.
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT", 1.0)
    engine = create_engine(f"sqlite:///{path}")
    sqlitefile.prepare(engine)  # WAL, as the schema upgrade switches a file
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 0)")
    yield engine
    engine.dispose()


@pytest.fixture
def other(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection to the file, giving up on a lock at once."""
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    yield connection
    connection.close()


def value(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql("SELECT v FROM t WHERE id = 1").scalar_one())


def test_a_write_holds_the_write_lock_from_its_begin(
    engine: Engine, other: sqlite3.Connection
) -> None:
    with engine.begin(), pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")  # the write has sent no statement yet
    other.execute("BEGIN IMMEDIATE")  # released at commit
    other.execute("ROLLBACK")


def test_a_read_takes_no_lock_and_keeps_its_snapshot(
    engine: Engine, other: sqlite3.Connection
) -> None:
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE t SET v = 1 WHERE id = 1")
    with reading(engine) as conn:
        assert value(conn) == 0  # beside the writer, its write not seen
        other.execute("COMMIT")
        assert value(conn) == 0  # one snapshot for the whole read
        other.execute("BEGIN IMMEDIATE")  # the read holds no write lock
        other.execute("UPDATE t SET v = 2 WHERE id = 1")
        other.execute("COMMIT")
    with reading(engine) as conn:
        assert value(conn) == 2


def test_a_read_that_sent_nothing_leaves_no_transaction_open(engine: Engine) -> None:
    with reading(engine):
        pass
    pooled = engine.raw_connection()  # the connection the read used, back from the pool
    try:
        assert pooled.driver_connection is not None
        assert not pooled.driver_connection.in_transaction
    finally:
        pooled.close()


def test_every_transaction_of_a_read_begins_deferred(
    engine: Engine, other: sqlite3.Connection
) -> None:
    with reading(engine) as conn:
        assert value(conn) == 0
        conn.rollback()
        other.execute("BEGIN IMMEDIATE")  # a writer holds the lock from here on
        other.execute("UPDATE t SET v = 1 WHERE id = 1")
        assert value(conn) == 0  # a new transaction, still beside the writer
        other.execute("COMMIT")
    with engine.begin() as conn:  # the pooled connection again: a write takes the lock
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        assert value(conn) == 1


def test_a_write_does_not_carry_on_a_transaction_left_open(engine: Engine) -> None:
    with engine.connect() as conn:
        driver = conn.connection.dbapi_connection
        assert driver is not None
        driver.execute("BEGIN")  # as a COMMIT that failed leaves it, unknown to SQLAlchemy
        driver.execute("UPDATE t SET v = 9 WHERE id = 1")
        with pytest.raises(sa.exc.OperationalError, match="within a transaction"):
            conn.begin()
    with reading(engine) as conn:
        assert value(conn) == 0  # the stale write went with the connection's reset
