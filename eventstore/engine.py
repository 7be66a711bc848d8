"""Engines with the per-dialect settings the log relies on, and driver errors made typed.

SQLite: the driver's own transaction handling is switched off so that a write transaction
starts with ``BEGIN IMMEDIATE`` (it takes the write lock at once, so two writers never
deadlock upgrading a read lock), WAL lets readers run beside the writer, and a busy
timeout turns "database is locked" into a bounded wait. PostgreSQL and MariaDB: a connect
timeout, and a ping before a pooled connection is reused, so a restarted server costs one
failed call, not a broken process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from eventstore.errors import StoreUnavailable

#: Seconds a SQLite writer waits for the lock before the call fails with StoreUnavailable.
SQLITE_BUSY_TIMEOUT = 30.0
#: Seconds to wait for a TCP connection to PostgreSQL or MariaDB.
CONNECT_TIMEOUT = 5
#: Execution option marking a connection that only reads (SQLite then begins DEFERRED).
READ_ONLY = "mastertrail_read_only"


def create_engine(url: str | sa.URL) -> Engine:
    """An engine for ``url`` configured as the log needs it."""
    url = sa.make_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        configure_sqlite(engine, wal=url.database not in (None, "", ":memory:"))
        return engine
    if backend == "postgresql":
        return sa.create_engine(
            url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT}
        )
    if backend in ("mysql", "mariadb"):
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            pool_recycle=3600,
            isolation_level="READ COMMITTED",
            connect_args={"connect_timeout": CONNECT_TIMEOUT, "charset": "utf8mb4"},
        )
    raise ValueError(f"unsupported database {backend!r}: use sqlite, postgresql or mysql")


def configure_sqlite(engine: Engine, *, wal: bool) -> None:
    """Make ``engine`` begin SQLite write transactions IMMEDIATE (and reads DEFERRED)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def begin_write(conn: Connection) -> None:
    """Make sure ``conn`` is in a write transaction; on SQLite one holding the write lock.

    Engines made by :func:`create_engine` already begin SQLite transactions IMMEDIATE; an
    engine configured elsewhere (Buildbot's, whose driver begins lazily before the first
    write) gets an explicit ``BEGIN IMMEDIATE`` here.
    """
    if not conn.in_transaction():
        conn.begin()
    if conn.dialect.name == "sqlite":
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is not None and not dbapi_connection.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn a database that is down, unreachable or locked into :class:`StoreUnavailable`."""
    try:
        yield
    except exc.DBAPIError as error:
        if is_unavailable(error):
            raise StoreUnavailable(f"database unavailable: {_first_line(error)}") from error
        raise


def is_unavailable(error: exc.DBAPIError) -> bool:
    """True when ``error`` means the database could not be used, not that a query was wrong."""
    if error.connection_invalidated or isinstance(error, exc.InterfaceError):
        return True
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg
    if sqlstate:
        return str(sqlstate).startswith("08") or sqlstate in _PG_UNAVAILABLE
    code = orig.args[0] if orig is not None and orig.args else None
    if isinstance(code, int):  # PyMySQL: (code, message)
        return 2000 <= code < 3000 or code in _MYSQL_UNAVAILABLE
    text = str(orig).lower()
    return isinstance(error, exc.OperationalError) and any(m in text for m in _UNAVAILABLE_TEXT)


# admin shutdown, crash shutdown, cannot connect now, too many connections
_PG_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "53300"})
# too many connections, server shutdown, connection killed, disconnected by server
_MYSQL_UNAVAILABLE = frozenset({1040, 1053, 1927, 4031})
# SQLite locked or unopenable; a psycopg connect failure carries no SQLSTATE
_UNAVAILABLE_TEXT = (
    "database is locked",
    "unable to open database",
    "disk i/o error",
    "connection",
    "server closed",
)


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
