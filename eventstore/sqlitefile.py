"""What a SQLite *file* needs beyond a connection: created only by the upgrade, switched to
WAL once (the journal mode is stored in the file), and never written by a read.

Connections do not change the journal mode: a read-only file (its permissions, a read-only
mount, or a ``mode=ro`` URL) is read as it is, and a database that is only inspected is
left byte for byte as it was. A WAL database whose ``-wal`` and ``-shm`` files neither
exist nor can be created (a read-only directory or mount, with no writer connected) cannot
be opened by SQLite as usual: it is opened *immutable* (``immutable=1``: the file is the
whole database, read without locks), and such a connection is used for one read only, so
that a writer who starts meanwhile is seen by the next read.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from eventstore.engine import SQLITE_BUSY_TIMEOUT

#: Marks, in a pooled connection's ``info``, a connection opened immutable.
IMMUTABLE = "mastertrail_immutable"


def path_of(engine: Engine) -> Path | None:
    """The file of a SQLite ``engine``, or None (another database, or one in memory)."""
    if engine.dialect.name != "sqlite":
        return None
    return _path(engine.url.database)


def _path(database: str | None) -> Path | None:
    if not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI (``?uri=true``)
        uri = urllib.parse.urlsplit(database)
        query = urllib.parse.parse_qs(uri.query)
        if query.get("mode") == ["memory"] or not uri.path:
            return None
        return Path(urllib.parse.unquote(uri.path))
    return Path(database)


def missing(engine: Engine) -> Path | None:
    """The file of a SQLite ``engine`` when it does not exist (a read would create it)."""
    path = path_of(engine)
    return path if path is not None and not path.exists() else None


def without_sync_per_commit(engine: Engine) -> None:
    """Make a SQLite ``engine``'s connections skip the sync to disk at every commit (WAL
    keeps the file consistent; a crash of the machine may lose the last commits): for a
    throwaway database. A no-op for other databases."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _no_sync_per_commit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")


def prepare(engine: Engine) -> None:
    """Before a schema upgrade: switch a SQLite file to WAL (creating the file when it does
    not exist yet). A no-op for other databases, and for a file already in WAL."""
    if path_of(engine) is None:
        return
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            _enable_wal(cursor)
        finally:
            cursor.close()


def open_readable(engine: Engine) -> None:
    """Make ``engine`` open a read-only WAL file that SQLite cannot open as usual immutable
    (see the module's description)."""
    event.listen(engine, "do_connect", _connect)


def _connect(dialect: Any, record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
    connection = dialect.loaded_dbapi.connect(*cargs, **cparams)
    try:
        connection.execute("PRAGMA schema_version").fetchall()  # reads the file's header
        return connection
    except sqlite3.OperationalError as error:
        path = _path(str(cargs[0])) if cargs else None
        if "readonly" not in str(error) or path is None or Path(f"{path}-wal").exists():
            return connection  # the error shows itself at the first statement, typed
    connection.close()
    options = {key: value for key, value in cparams.items() if key != "uri"}
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro&immutable=1"
    record.info[IMMUTABLE] = True
    return dialect.loaded_dbapi.connect(uri, uri=True, **options)


def _enable_wal(cursor: Any) -> None:
    """Switch to WAL. SQLite does not apply the busy timeout to a journal-mode change, so
    processes opening a new file at once retry here, within the same bound."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


__all__ = ["IMMUTABLE", "missing", "open_readable", "path_of", "prepare"]
