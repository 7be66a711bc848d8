"""What every session mastertrail uses is set to: how long one statement waits for a lock,
and the isolation level the log's design needs.

The head row's lock orders every append (``docs/ordering.rst``); each statement reads the
newest committed rows, so the log needs READ COMMITTED, whatever the database's default
(REPEATABLE READ or SERIALIZABLE would fail a verify or rebuild beside writers with a
serialization failure, or give a writer a stale snapshot). A lock held by a process that
stopped (SIGSTOP, a paused VM) is waited for at most :data:`LOCK_WAIT` seconds per
statement, not the server's default (50 s per statement on MariaDB).

An engine made by :func:`eventstore.create_engine` is configured when it connects (its
``isolation_level``, :func:`postgresql_options`, :func:`mysql_init_command`): nothing is
sent per call. On an engine made elsewhere (Buildbot's), :func:`isolated` sets the
isolation level of each transaction mastertrail runs, and :func:`pin` the lock wait at the
start of each write transaction: for the transaction on PostgreSQL, for the connection on
MariaDB, whose lock wait has no narrower scope (see ``docs/reliability.rst``).

On MariaDB the level is set for the next transaction only (``SET TRANSACTION``), not for
the session: the session's level, set and restored around every call, took four round
trips of each call (two statements and their commits), and Buildbot's own statements on
the same connection still run at the session's level.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: The isolation level of every transaction mastertrail runs on PostgreSQL and MariaDB.
ISOLATION = "READ COMMITTED"
#: Seconds one statement waits for a row lock held by another session (PostgreSQL's
#: ``lock_timeout``, MariaDB's ``innodb_lock_wait_timeout``, whole seconds) before it fails
#: and the command retries (:mod:`commands.retry`).
LOCK_WAIT = 5

#: Dialects of engines configured at connect time: :func:`pin` has nothing to do there.
_configured: weakref.WeakSet[sa.Dialect] = weakref.WeakSet()
#: Marks a driver connection whose session :func:`pin` has set (MariaDB).
_PINNED = "mastertrail_session_pinned"


def configured(dialect: sa.Dialect) -> None:
    """Record that engines of ``dialect`` set their sessions when they connect."""
    _configured.add(dialect)


def postgresql_options() -> str:
    """libpq ``options`` setting the session's lock wait at connect time (the isolation
    level is the engine's own ``isolation_level``)."""
    return f"-c lock_timeout={LOCK_WAIT * 1000}"


def mysql_init_command() -> str:
    """The statement PyMySQL runs on every new connection (the isolation level is the
    engine's own ``isolation_level``)."""
    return f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT}"


def pin(conn: Connection) -> None:
    """Set the lock wait of the write transaction ``conn`` is in, unless its engine did
    so when it connected (the isolation level of an engine made elsewhere is set by
    :func:`isolated`).

    PostgreSQL: ``SET LOCAL lock_timeout``, which ends with the transaction, sent with the
    transaction's ``BEGIN`` where the driver allows (:func:`_begun_with_lock_wait`).
    MariaDB: the session's ``innodb_lock_wait_timeout``, once per connection. (SQLite's
    busy timeout is set by :func:`eventstore.engine.begin_write`.)
    """
    dialect = conn.dialect
    if dialect in _configured:
        return
    if dialect.name == "postgresql":
        if not _begun_with_lock_wait(conn):
            conn.exec_driver_sql(_PG_LOCK_WAIT)
        return
    if dialect.name not in ("mysql", "mariadb"):
        return
    info = conn.connection.info
    if not info.get(_PINNED):
        conn.exec_driver_sql(mysql_init_command())
        info[_PINNED] = True


def commits_itself(conn: Connection) -> bool:
    """Whether a write on ``conn`` is a transaction of its own (see
    :func:`commands.retry.run`). PostgreSQL: its driver is in autocommit; nothing is begun
    before it, so a write there sets its own lock wait (:data:`PG_ARM_LOCK_WAIT`), for its
    transaction only. MariaDB: ``conn`` is marked :data:`COMMITTING`; the write's compound
    statement ends with its own ``COMMIT`` (see :mod:`eventstore.mariadb_writer`)."""
    if conn.info.get(COMMITTING):
        return True
    return getattr(conn.connection.dbapi_connection, "autocommit", False) is True


#: Marks a MariaDB driver connection whose write commits itself (:func:`commits_itself`).
COMMITTING = "mastertrail_commits_itself"


#: PyMySQL's flag, in the server's last reply, of a transaction open on the server.
_MYSQL_IN_TRANSACTION = 1


def end_committed(conn: Connection) -> None:
    """End SQLAlchemy's transaction on ``conn`` after a write that committed itself
    (:func:`commits_itself`), sending nothing that would find nothing to commit.

    PostgreSQL: the driver is in autocommit, and its commit sends nothing. MariaDB: the
    write's statement ended with its own ``COMMIT``, and the server's reply to it says
    whether a transaction is still open: the driver's ``COMMIT`` is sent only if one is
    (:func:`ends_only_if_open`)."""
    ends_only_if_open(conn)
    conn.commit()


def ends_only_if_open(conn: Connection) -> None:
    """From now until the driver sends a query on ``conn``, its ``commit`` and ``rollback``
    (SQLAlchemy's, or the pool's as it takes the connection back) are sent only if a
    transaction is open.

    psycopg and sqlite3 send nothing when no transaction is open; PyMySQL sends ``COMMIT``
    or ``ROLLBACK`` whatever the state, one round trip more. The server says in each OK
    reply (a commit's, a ping's, a statement's that returns no rows) whether a
    transaction is open, PyMySQL's ``server_status``, but not at the end of a result set.
    So the status is trusted only until the next query, which puts the driver's own
    methods back. The three are methods of this connection object; the class's are
    untouched."""
    driver: Any = conn.connection.dbapi_connection
    if driver is None or not isinstance(getattr(driver, "server_status", None), int):
        return
    driver_class = type(driver)

    def as_ever() -> None:
        for name in ("commit", "rollback", "query"):
            driver.__dict__.pop(name, None)

    def commit() -> None:
        if driver.server_status & _MYSQL_IN_TRANSACTION:
            driver_class.commit(driver)  # its reply is an OK: the status stays current

    def rollback() -> None:
        if driver.server_status & _MYSQL_IN_TRANSACTION:
            driver_class.rollback(driver)

    def query(*args: Any, **kwargs: Any) -> Any:
        as_ever()
        return driver.query(*args, **kwargs)

    driver.commit = commit
    driver.rollback = rollback
    driver.query = query


@contextlib.contextmanager
def writing_at_once(conn: Connection) -> Iterator[bool]:
    """While the block runs, a write on ``conn`` is a transaction of its own
    (:func:`commits_itself`): PostgreSQL's driver is in autocommit, MariaDB's connection
    is marked :data:`COMMITTING`. Yields False, having changed nothing, when the driver
    refuses autocommit (a transaction it began); afterwards ``conn`` is as it was."""
    if conn.dialect.name != "postgresql":
        conn.info[COMMITTING] = True
        try:
            yield True
        finally:
            conn.info.pop(COMMITTING, None)
        return
    driver: Any = conn.connection.dbapi_connection
    try:
        driver.autocommit = True
    except Exception:  # the driver's own refusal
        yield False
        return
    try:
        yield True
    finally:
        if not getattr(driver, "closed", True):
            driver.autocommit = False


def lock_wait_set(conn: Connection) -> bool:
    """Whether the MariaDB session of ``conn`` waits for a lock as the log needs (its
    engine set it on connect, or :func:`pin` did), so that a write needs no transaction
    begun by :func:`pin` first."""
    return conn.dialect in _configured or bool(conn.info.get(_PINNED))


#: PostgreSQL's :data:`LOCK_WAIT` for the rest of the statement's transaction, as a value a
#: statement computes before it waits for a lock (the head's update tests it: see
#: :mod:`eventstore.postgresql_writer`).
PG_ARM_LOCK_WAIT = f"set_config('lock_timeout', '{LOCK_WAIT * 1000}', true)"


#: The lock wait of a PostgreSQL transaction on an engine made elsewhere.
_PG_LOCK_WAIT = f"SET LOCAL lock_timeout = {LOCK_WAIT * 1000}"
#: psycopg's own ``BEGIN`` at :data:`ISOLATION` and the lock wait, as one simple query.
_PG_BEGIN = f"BEGIN ISOLATION LEVEL {ISOLATION}; {_PG_LOCK_WAIT}".encode()
#: libpq's numbers (``PQTRANS_IDLE``, ``PQTRANS_INTRANS``, ``PGRES_COMMAND_OK``).
_PG_IDLE, _PG_IN_TRANSACTION, _PG_COMMAND_OK = 0, 2, 1


def _begun_with_lock_wait(conn: Connection) -> bool:
    """Begin the transaction of ``conn`` and set its lock wait in one round trip, if its
    driver is psycopg 3 and has not begun it yet; False when nothing was done.

    psycopg begins a transaction with a ``BEGIN`` of its own, one round trip before the
    transaction's first statement, whenever it finds the session idle in no
    transaction. Sent here as one simple query through its libpq connection (``pgconn``,
    psycopg's documented way to send what it does not wrap), the same ``BEGIN`` and the
    lock wait leave the session in the transaction: psycopg sends no ``BEGIN`` of its
    own, and its commit and rollback end the transaction as ever, so nothing outlives it.
    Anything else (another driver, autocommit, a transaction begun already, an error)
    leaves the lock wait to the ordinary statement, which raises the driver's error as
    SQLAlchemy wraps it.
    """
    driver = conn.connection.dbapi_connection
    pgconn = getattr(driver, "pgconn", None)
    if pgconn is None or getattr(driver, "autocommit", True):
        return False
    if pgconn.transaction_status != _PG_IDLE:
        return False
    try:
        result = pgconn.exec_(_PG_BEGIN)
    except Exception:  # the driver's own error, which the ordinary statement raises again
        return False
    began = result.status == _PG_COMMAND_OK
    return bool(began and pgconn.transaction_status == _PG_IN_TRANSACTION)


def isolated(engine: sa.Engine) -> sa.Engine:
    """``engine``, or a view of it whose transactions run at :data:`ISOLATION`, its
    connections given back to the pool at the level they had (PostgreSQL and MariaDB
    engines made elsewhere; SQLite's transactions are serializable, which the log is built
    for)."""
    if engine.dialect in _configured or engine.dialect.name == "sqlite":
        return engine
    if engine.dialect.name in ("mysql", "mariadb"):
        # The view's own listener: the engine's other users (Buildbot) never meet it.
        view = engine.execution_options()
        sa.event.listen(view, "begin", _next_transaction_isolated)
        return view
    # psycopg sends the level with its BEGIN: no statement of its own.
    return engine.execution_options(isolation_level=ISOLATION)


def _next_transaction_isolated(conn: Connection) -> None:
    """Run the transaction ``conn`` begins at :data:`ISOLATION` (MariaDB). The driver has
    sent nothing of it yet: its first statement starts it. A connection given back unused
    is rolled back by the pool, which clears the setting too. A write that commits itself
    (:func:`commits_itself`) runs at the session's level: its reads are locking reads,
    reads of rows it wrote and of texts that never change, the same at any level."""
    if not conn.info.get(COMMITTING):
        conn.exec_driver_sql(f"SET TRANSACTION ISOLATION LEVEL {ISOLATION}")
