"""Engines with the per-dialect settings the log relies on, and driver errors made typed.

SQLite: the driver's own transaction handling is switched off so that a write transaction
starts with ``BEGIN IMMEDIATE`` (it takes the write lock at once, so two writers never
deadlock upgrading a read lock), WAL (switched on once, by the upgrade: see
:mod:`eventstore.sqlitefile`) lets readers run beside the writer, and a busy timeout turns
"database is locked" into a bounded wait. PostgreSQL and MariaDB: a connect timeout, and a
ping before a pooled connection is reused, so a restarted server costs one failed call, not
a broken process; a server that stops answering, or a client that stops half-way through a
transaction, is given up on after a bounded time (see ``docs/reliability.rst``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from eventstore import session
from eventstore.errors import InvalidArgument, StoreUnavailable
from eventstore.unwritable import driver_code, typed_error
from eventstore.urls import DatabaseUrl, parse_db_url, redact

#: Seconds a SQLite writer waits for the lock before the call fails with StoreUnavailable.
SQLITE_BUSY_TIMEOUT = 30.0
#: Seconds to wait for a connection to PostgreSQL or MariaDB (TCP and handshake).
CONNECT_TIMEOUT = 5
#: Seconds a MariaDB server may take to answer one request, or to accept one, before the
#: connection is given up on; longer than the session's lock wait
#: (:data:`eventstore.session.LOCK_WAIT`), so a lock wait ends with the server's error first.
MYSQL_READ_TIMEOUT = 30
#: Seconds sent data may stay unacknowledged by PostgreSQL's host (a dead network) before
#: the connection is given up on; TCP keepalives probe an idle one as often.
PG_TCP_TIMEOUT = 30
#: Seconds PostgreSQL lets a session sit idle inside a transaction before ending it, so a
#: client that stops half-way (hung, or stopped in a debugger) releases the log's head lock.
PG_IDLE_IN_TRANSACTION_TIMEOUT = 60


def create_engine(url: str | sa.URL, *, ping: bool = True) -> Engine:
    """An engine for ``url`` configured as the log needs it; ``url`` may be written as in
    Buildbot's ``master.cfg`` (see :mod:`eventstore.urls`).

    ``ping=False`` (PostgreSQL and MariaDB) leaves out the ping before a pooled connection
    is reused, one round trip of every call: a connection the server has closed since its
    last use (a restart, a killed session) then fails the call it is lent to, with
    :class:`StoreUnavailable`, and is replaced with every other connection the pool held
    from before; the caller tries again (as the Buildbot component does).

    A URL that cannot be parsed, names another database, or needs a driver that is not
    installed is bad input: :class:`InvalidArgumentType` or :class:`InvalidArgument`.
    """
    parsed = parse_db_url(url)
    try:
        return _create_engine(parsed, ping)
    except (exc.NoSuchModuleError, ImportError) as error:
        hint = parsed.extra or f"the driver {parsed.url.get_driver_name()!r}"
        reason = f"needs a driver that is not installed ({error}; install {hint})"
        raise InvalidArgument("db", reason, redact(parsed.url)) from error


def _create_engine(parsed: DatabaseUrl, ping: bool) -> Engine:
    url = parsed.url
    if parsed.backend == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        configure_sqlite(engine)
        return engine
    if parsed.backend == "postgresql":
        args = _pg_connect_args(url)
        engine = sa.create_engine(
            url, pool_pre_ping=ping, isolation_level=session.ISOLATION, connect_args=args
        )
        if args.get("options") == _pg_options():
            session.configured(engine.dialect)
        return engine
    engine = sa.create_engine(
        url,
        pool_pre_ping=ping,
        pool_recycle=parsed.pool_recycle,
        isolation_level=session.ISOLATION,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": MYSQL_READ_TIMEOUT,
            "write_timeout": MYSQL_READ_TIMEOUT,
            "charset": "utf8mb4",
            "init_command": session.mysql_init_command(),
        },
    )
    session.configured(engine.dialect)
    return engine


def _pg_options() -> str:
    return (
        f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_TIMEOUT}s "
        + session.postgresql_options()
    )


def _pg_connect_args(url: sa.URL) -> dict[str, Any]:
    """libpq settings for psycopg (a URL's own query parameters win)."""
    args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
    if url.get_driver_name() == "psycopg":
        args.update(
            keepalives=1,
            keepalives_idle=PG_TCP_TIMEOUT,
            keepalives_interval=5,
            keepalives_count=3,
            tcp_user_timeout=PG_TCP_TIMEOUT * 1000,
            options=_pg_options(),
        )
    for key in list(args):
        if key in url.query:
            del args[key]
    return args


def configure_sqlite(engine: Engine) -> None:
    """Make ``engine`` begin SQLite write transactions IMMEDIATE (and reads DEFERRED). The
    journal mode is the file's own: :func:`eventstore.sqlitefile.prepare` switches it to WAL
    once, when the schema is upgraded, so a connection writes nothing by opening."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    # Every transaction SQLAlchemy begins on this engine takes the write lock at once, but
    # a read's (reading()). This is the dialect's begin hook rather than a "begin" event: a
    # connection event on the engine makes SQLAlchemy dispatch events around every
    # statement and commit, a seventh of a heartbeat's time.
    engine.dialect.do_begin = _begin  # type: ignore[method-assign,assignment]
    from eventstore import sqlitefile  # it builds on this module

    sqlitefile.open_readable(engine)


#: Marks the pooled connection of a :func:`reading` connection while it is checked out.
_READING = "mastertrail_reading"
#: :data:`eventstore.sqlitefile.IMMUTABLE`.
_IMMUTABLE = "mastertrail_immutable"


def _begin(connection: Any) -> None:
    """``Dialect.do_begin`` of an engine made by :func:`create_engine` on SQLite
    (``connection`` is the pool's proxy of the driver's connection). A transaction the
    driver still has open (a COMMIT that failed) makes either BEGIN fail, rather than be
    carried on."""
    connection.execute("BEGIN" if connection.info.get(_READING) else "BEGIN IMMEDIATE")


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection that only reads. On an engine made by :func:`create_engine` on SQLite
    each of its transactions begins DEFERRED: a snapshot beside the writer, without its
    lock."""
    with engine.connect() as conn:
        if engine.dialect.do_begin is not _begin:
            yield conn
            return
        info = conn.connection.info
        info[_READING] = True
        try:
            yield conn
        finally:
            info.pop(_READING, None)
            if info.get(_IMMUTABLE):  # a read-only file opened immutable: one read each
                conn.invalidate()


def begins_in_dialect(engine: Engine) -> bool:
    """Whether ``engine``'s dialect sends BEGIN itself (SQLite's ``BEGIN IMMEDIATE``, made
    by :func:`create_engine`): no cursor event shows it, so a count of statements adds
    the ``begin`` event."""
    return engine.dialect.do_begin is _begin


def storage_engine(conn: Connection, table: str) -> str | None:
    """The MySQL/MariaDB storage engine of ``table`` (None on other databases, or when
    there is no such table)."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return None
    found = conn.execute(
        sa.text(
            "SELECT engine FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = :table"
        ),
        {"table": table},
    ).scalar()
    return None if found is None else str(found)


def begin_write(conn: Connection) -> None:
    """Make sure ``conn`` is in a write transaction; on SQLite one holding the write lock.

    Engines made by :func:`create_engine` already begin SQLite transactions IMMEDIATE; an
    engine configured elsewhere (Buildbot's, whose driver begins lazily before the first
    write) gets an explicit ``BEGIN IMMEDIATE`` here, after the busy timeout of
    :data:`SQLITE_BUSY_TIMEOUT` (the driver's default is 5 s). On PostgreSQL and MariaDB
    the transaction's lock wait is set (:func:`eventstore.session.pin`).
    """
    if not conn.in_transaction():
        conn.begin()
    if conn.dialect.name == "sqlite":
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is not None and not dbapi_connection.in_transaction:
            if conn.engine.dialect.do_begin is not _begin:  # not configured on connect
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        session.pin(conn)


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn a database that is down, unreachable or locked into :class:`StoreUnavailable`,
    and one that is full, read-only or no database into the errors of
    :mod:`eventstore.unwritable`."""
    try:
        yield
    except exc.DBAPIError as error:
        typed = typed_error(error)  # full, read-only, not a database
        if typed is not None:
            raise typed from error
        if is_unavailable(error):
            raise StoreUnavailable(f"database unavailable: {_first_line(error)}") from error
        raise


def is_unavailable(error: exc.DBAPIError) -> bool:
    """True when ``error`` means the database could not be used, not that a query was wrong."""
    if error.connection_invalidated or isinstance(error, exc.InterfaceError):
        return True
    orig = error.orig
    code = driver_code(error)
    if isinstance(code, int):  # PyMySQL: (code, message), and a SQLSTATE from the server
        return 2000 <= code < 3000 or code in _MYSQL_UNAVAILABLE
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg
    if sqlstate:
        return str(sqlstate).startswith("08") or sqlstate in _PG_UNAVAILABLE
    text = str(orig).lower()
    return isinstance(error, exc.OperationalError) and any(m in text for m in _UNAVAILABLE_TEXT)


# admin shutdown, crash shutdown, cannot connect now, too many connections, the session
# idled in a transaction too long, the database does not exist, authentication failed
_PG_UNAVAILABLE = frozenset(
    {"57P01", "57P02", "57P03", "53300", "25P03", "3D000", "28000", "28P01"}
)
# too many connections, no access to the database, authentication failed, unknown
# database, server shutdown, connection killed, disconnected by the server
_MYSQL_UNAVAILABLE = frozenset({1040, 1044, 1045, 1049, 1053, 1927, 4031})
# SQLite locked or unopenable; a psycopg connect failure carries no SQLSTATE
_UNAVAILABLE_TEXT = (
    "database is locked",
    "unable to open database",
    "disk i/o error",
    "connection",
    "server closed",
    "failed to resolve host",
)


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
