"""What a run of the archive leaves in the log's table, cleaned once it ends (see
:mod:`eventstore.archive_seal`): rows deleted from a table leave entries in its indexes
that the database removes later, on its own, and that every seek past them (a stream's
first event in the table, in ``masters_as_of``, say) steps over until then.

- PostgreSQL: the table is vacuumed (:func:`vacuum`), as autovacuum would do later.
- MariaDB: the log is system-versioned (revision ``0005_append_only_guards``), so each
  deleted row stays as a history row; they are removed (:func:`forget_history`), which
  leaves every archived row's entries delete-marked in each index until InnoDB's purge
  removes them, seconds or minutes later (several seconds for a million rows on a quiet
  server; never while another transaction's snapshot is older). A run that deleted at
  least as many rows as the table keeps rebuilds it online (:func:`rebuild`), which
  leaves those entries behind at once; a run that deleted fewer leaves them to the purge:
  a rebuild costs what the table keeps, the entries cost what the run deleted.

Each step needs a privilege of the table's owner (VACUUM; DELETE HISTORY; ALTER); a
database user without it logs a warning and leaves the step to the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from eventstore.archive import archived_through
from eventstore.engine import reading, translate_errors
from eventstore.reads import head_position
from eventstore.schema import events

log = structlog.get_logger("mastertrail.archive")

#: The seconds the rebuild waits for the table's metadata lock, which it takes twice,
#: briefly (to begin, and to swap the rebuilt table in): while it waits, appends wait
#: behind it. A transaction holding the table longer (a long read) makes it give up,
#: leaving the entries to the purge.
REBUILD_LOCK_WAIT = 1

#: The seconds a step of the tidying may take to answer on MariaDB (:func:`unhurried`).
#: Removing 4.8 million history rows (a year of ten masters archived at once) took longer
#: than the engine's :data:`eventstore.engine.MYSQL_READ_TIMEOUT`.
TIDY_TIMEOUT = 3600


def tidy(engine: Engine, *, deleted: int) -> None:
    """After a run that deleted ``deleted`` rows from the log's table: on MariaDB remove
    their history rows, then rebuild the table when they were at least as many as it
    keeps; on PostgreSQL vacuum it."""
    if engine.dialect.name in ("mysql", "mariadb"):
        if forget_history(engine) and deleted >= _kept(engine):
            rebuild(engine)
    elif engine.dialect.name == "postgresql":
        vacuum(engine)


def vacuum(engine: Engine) -> None:
    """``VACUUM (ANALYZE)`` of the log's table (outside any transaction; it blocks no
    append). A role that may not vacuum it leaves that to autovacuum."""
    try:
        with translate_errors(), engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {events.name}")
    except sa.exc.DBAPIError as error:  # the segments are sealed all the same
        log.warning("archive_vacuum_skipped", reason=str(error.orig))


def forget_history(engine: Engine) -> bool:
    """MariaDB keeps each deleted row of the system-versioned log as a history row: remove
    them, so the space is freed, once a run (the statement reads the whole table). Only
    archived rows are ever deleted, so the history holds nothing else; rows left by a run
    killed before it go with the next run's. False when the user may not."""
    try:
        with translate_errors(), engine.begin() as conn, unhurried(conn):
            conn.exec_driver_sql(f"DELETE HISTORY FROM {events.name}")
    except sa.exc.DBAPIError as error:  # the segments are sealed all the same
        log.warning(
            "archive_history_kept",
            reason=str(error.orig),
            hint="grant DELETE HISTORY on mastertrail_events to free the archived rows' space",
        )
        return False
    return True


def rebuild(engine: Engine) -> None:
    """Rebuild MariaDB's log table online (appends go on meanwhile), with its history as
    it is (none, after :func:`forget_history`): the copy leaves the delete-marked entries
    behind, and its indexes' statistics are counted again. When the table's metadata
    lock is not had within :data:`REBUILD_LOCK_WAIT` seconds, or the user may not alter
    the table, the purge removes them later."""
    statement = (
        f"SET STATEMENT lock_wait_timeout = {REBUILD_LOCK_WAIT}, "
        "system_versioning_alter_history = KEEP "
        f"FOR ALTER TABLE {events.name} FORCE, ALGORITHM = INPLACE, LOCK = NONE"
    )
    try:
        with translate_errors(), engine.connect() as conn, unhurried(conn):
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql(statement)
    except sa.exc.DBAPIError as error:  # the segments are sealed all the same
        log.warning(
            "archive_rebuild_skipped",
            reason=str(error.orig),
            hint="the archived rows' index entries slow reads until InnoDB purges them",
        )


@contextlib.contextmanager
def unhurried(conn: Connection) -> Iterator[None]:
    """While the block runs, the driver waits for MariaDB's answer up to
    :data:`TIDY_TIMEOUT` seconds rather than the engine's
    (:data:`eventstore.engine.MYSQL_READ_TIMEOUT`, for calls that answer at once): removing
    a year's history rows, or rebuilding the table, reads the whole table. PyMySQL applies
    its ``read_timeout`` before each read, so the connection has its own back after."""
    driver: Any = conn.connection.dbapi_connection
    if driver is None or not hasattr(driver, "_read_timeout"):
        yield
        return
    saved = driver._read_timeout
    driver._read_timeout = TIDY_TIMEOUT
    try:
        yield
    finally:
        driver._read_timeout = saved


def _kept(engine: Engine) -> int:
    """The rows the log's table keeps: every position after the archive's last, up to
    the head (positions have no gaps)."""
    with translate_errors(), reading(engine) as conn:
        return head_position(conn) - archived_through(conn)


__all__ = [
    "REBUILD_LOCK_WAIT",
    "TIDY_TIMEOUT",
    "forget_history",
    "rebuild",
    "tidy",
    "unhurried",
    "vacuum",
]
