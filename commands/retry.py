"""Run one command attempt per transaction, retrying when another writer got there first.

An attempt reads, decides and appends inside the connection's transaction; it is
committed once. A stale stream version, a lost race to insert the same name, a deadlock
or a serialization failure rolls the attempt back and runs it again on fresh state, a
bounded number of times, with a short random back-off.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import Connection

from eventstore.engine import begin_write, translate_errors
from eventstore.errors import ConcurrencyError
from eventstore.store import lock_head

T = TypeVar("T")

#: Attempts per command before a conflict is given up on (and re-raised).
MAX_ATTEMPTS = 25

# PostgreSQL: serialization failure, deadlock. MariaDB: record changed since read (with
# innodb_snapshot_isolation), lock wait timeout, deadlock.
_PG_RETRY = frozenset({"40001", "40P01"})
_MYSQL_RETRY = frozenset({1020, 1205, 1213})


def run(conn: Connection, attempt: Callable[[Connection], T]) -> T:
    """Run ``attempt(conn)`` and commit; retry it on a conflict, in a new transaction."""
    for number in range(1, MAX_ATTEMPTS + 1):
        try:
            with translate_errors():
                begin_write(conn)
                if number > 1:
                    # A retry reads under the log's lock: its state cannot be stale again,
                    # so a busy log cannot starve a command that reads many masters.
                    lock_head(conn)
                result = attempt(conn)
                conn.commit()
            return result
        except (ConcurrencyError, exc.DBAPIError) as error:
            _rollback(conn)
            if number == MAX_ATTEMPTS or not is_conflict(error):
                raise
        time.sleep(random.uniform(0, min(0.05, 0.001 * 2**number)))
    raise AssertionError("unreachable")


def is_conflict(error: Exception) -> bool:
    """True for errors that another writer caused and a fresh attempt may not meet."""
    if isinstance(error, ConcurrencyError | exc.IntegrityError):
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    orig = error.orig
    code = orig.args[0] if orig is not None and orig.args else None
    if isinstance(code, int):  # PyMySQL: (errno, message), whatever SQLSTATE it carries
        return code in _MYSQL_RETRY
    return getattr(orig, "sqlstate", None) in _PG_RETRY


def _rollback(conn: Connection) -> None:
    try:
        conn.rollback()
    except exc.DBAPIError:
        conn.invalidate()
