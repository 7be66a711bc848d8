"""SQLite transactions on an engine made by ``eventstore.create_engine``: a write takes the
write lock when it begins, a read (``reading``) takes none and keeps one snapshot."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore.engine import create_engine, reading


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "engine.sqlite"


@pytest.fixture
def engine(path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{path}")
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
