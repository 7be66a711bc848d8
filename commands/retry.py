"""Run one command attempt per transaction, retrying when another writer got there first
or held a lock too long, within a bound of time.

An attempt reads, decides and appends inside the connection's transaction; it is
committed once. A stale stream version, a lost race to insert the same name, a deadlock,
a serialization failure, a text the process wrongly thought stored (see
:mod:`eventstore.texts`) or a lock wait that timed out (the session's lock wait is
:data:`eventstore.session.LOCK_WAIT`) rolls the attempt back and runs it again on fresh
state, with a short random back-off, until :data:`RETRY_FOR` seconds have passed since the
first attempt began; then the call fails with :class:`StoreUnavailable`. Time comes from
an injectable monotonic clock. The bounds per database are in ``docs/reliability.rst``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import attrs
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from eventstore import (
    ConcurrencyError,
    StoreUnavailable,
    TextNotStored,
    Tip,
    begin_write,
    end_committed,
    ends_only_if_open,
    holds,
    is_unavailable,
    lock_head,
    lock_wait_set,
    translate_errors,
    writer_for,
    writing_at_once,
)

T = TypeVar("T")
R = TypeVar("R")

#: The clock and the pause of the retries (tests replace them).
monotonic: Callable[[], float] = time.monotonic
pause: Callable[[float], None] = time.sleep

#: Seconds after the first attempt began during which a conflict starts another attempt.
RETRY_FOR = 10.0
#: Longest pause between two attempts, in seconds.
MAX_BACKOFF = 0.05

# PostgreSQL: serialization failure, deadlock, lock_timeout reached. MariaDB: record
# changed since read (with innodb_snapshot_isolation), lock wait timeout, deadlock.
_PG_RETRY = frozenset({"40001", "40P01", "55P03"})
_MYSQL_RETRY = frozenset({1020, 1205, 1213})


@attrs.frozen
class AtOnce(Generic[T]):
    """A write that is one statement, sent as a transaction of its own (see :func:`run`):
    ``write(conn)`` raises :class:`ConcurrencyError` when it finds the log or the stream
    not as it expects, writing nothing; ``landed(conn)``, asked after its connection was
    lost, gives its result if it is in the log and None if it is not."""

    write: Callable[[Connection], T]
    landed: Callable[[Connection], T | None]


def run(
    conn: Connection,
    attempt: Callable[[Connection], T],
    *,
    written: Callable[[T], Iterable[Tip]] | None = None,
    at_once: Callable[[], AtOnce[T] | None] | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``attempt(conn)`` and commit; retry it on a conflict, in a new transaction.

    ``written(result)`` names where the attempt's writes end (the last event of each
    stream it appended to). When the connection is lost during the commit, the call looks
    on a new connection whether those events are in the log, for as long as the retries
    may run: if they are the result stands, if not the attempt runs again. So a call that
    is retried after a dropped connection never appends its events twice (a heartbeat's
    check-in, say); when the log cannot be asked, the call raises :class:`StoreUnavailable`.

    ``at_once()``, asked only on PostgreSQL, gives a write that is sent first, as one
    statement that is a transaction of its own (the driver in autocommit), which the
    database commits as it runs it: no ``BEGIN`` before it, no ``COMMIT`` after, one round
    trip, and the head's lock let go without waiting for this process to send a commit.
    When the write finds the log not as it expects or meets a conflict (it wrote
    nothing), or is not in the log after its connection was lost, ``attempt`` runs as
    ever.
    """
    clock = clock or monotonic
    sleep = sleep or pause
    deadline = clock() + RETRY_FOR
    if at_once is not None:
        done = _at_once(conn, at_once, deadline, clock, sleep)
        if done is not None:
            return done
    number = 0
    while True:
        number += 1
        try:
            with translate_errors():
                begin_write(conn)
                if number > 1:
                    # A retry reads under the log's lock: its state cannot be stale again,
                    # so a busy log cannot starve a command that reads many masters.
                    lock_head(conn)
                result = attempt(conn)
                _commit(conn, () if written is None else tuple(written(result)))
            return result
        except _CommitLost as lost:
            if _landed(conn, lost.tips, deadline, clock, sleep):
                return result
            if clock() >= deadline:
                raise gave_up(number, lost) from lost
        except (ConcurrencyError, TextNotStored, exc.DBAPIError) as error:
            _rollback(conn)
            if not is_conflict(error):
                raise
            if clock() >= deadline:
                raise gave_up(number, error) from error
        sleep(random.uniform(0, min(MAX_BACKOFF, 0.001 * 2**number)))


def _at_once(
    conn: Connection,
    make: Callable[[], AtOnce[T] | None],
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> T | None:
    """The result of the write ``make()`` gives, sent as a transaction of its own, or None
    when it wrote nothing (or could not be sent so: not PostgreSQL or MariaDB, a driver
    without autocommit, a transaction already begun, a MariaDB session whose lock wait is
    not set yet, no such write).

    PostgreSQL: the driver is put in autocommit for the statement. MariaDB: the connection
    is marked (:func:`~eventstore.writing_at_once`) and the writer's statement ends with its
    own ``COMMIT``, with no ``SET TRANSACTION`` before it and no ``COMMIT`` after
    (PyMySQL's autocommit is the server session's, and would cost a round trip each way
    to switch)."""
    if conn.in_transaction():
        return None
    name = conn.dialect.name
    if name not in ("postgresql", "mysql", "mariadb"):
        return None
    with translate_errors():
        driver: Any = conn.connection.dbapi_connection
    if name == "postgresql":
        if getattr(driver, "autocommit", None) is not False:
            return None
    elif not writer_for(conn).commits_inside or not lock_wait_set(conn):
        return None
    at_once = make()
    if at_once is None:
        return None
    with writing_at_once(conn) as sent:
        if not sent:
            return None
        try:
            with translate_errors():
                try:
                    result = at_once.write(conn)
                    end_committed(conn)  # SQLAlchemy's own: the server has nothing to commit
                    return result
                except (ConcurrencyError, TextNotStored):
                    return None
                except exc.DBAPIError as error:
                    if is_conflict(error):
                        return None
                    if not is_unavailable(error):
                        raise
            return _ask(conn, at_once.landed, deadline, clock, sleep)
        finally:
            _rollback(conn)


class _CommitLost(Exception):
    """The connection was lost during a commit: the writes ending at ``tips`` may or may
    not be in the log."""

    def __init__(self, tips: tuple[Tip, ...]) -> None:
        self.tips = tips
        super().__init__("the connection was lost during the commit")


def _commit(conn: Connection, tips: tuple[Tip, ...]) -> None:
    try:
        conn.commit()
    except exc.DBAPIError as error:
        if tips and is_unavailable(error):
            raise _CommitLost(tips) from error
        raise
    ends_only_if_open(conn)  # the pool's, at check-in: nothing left to roll back


def _landed(
    conn: Connection,
    tips: tuple[Tip, ...],
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> bool:
    """Whether the writes ending at ``tips`` are in the log, asked on a new connection
    until ``deadline``; StoreUnavailable when the log could not be asked by then."""
    return _ask(
        conn,
        lambda conn: all(holds(conn, tip.position, tip.hash) for tip in tips),
        deadline,
        clock,
        sleep,
    )


def _ask(
    conn: Connection,
    question: Callable[[Connection], R],
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> R:
    """``question(conn)`` about a write whose connection was lost, asked on a new
    connection until ``deadline``; StoreUnavailable when it could not be asked by then."""
    pause_for = 0.1
    while True:
        _rollback(conn)
        try:
            with translate_errors():
                found = question(conn)
                conn.rollback()
            return found
        except (StoreUnavailable, exc.DBAPIError) as error:
            if clock() >= deadline:
                raise StoreUnavailable(
                    "database unavailable: the connection was lost during a commit and "
                    "the log could not be asked whether it was written"
                ) from error
        sleep(pause_for)
        pause_for = min(1.0, pause_for * 2)


def repeat(
    operation: Callable[[], T],
    *,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``operation()`` (which opens its own transactions) again on a conflict, as
    :func:`run` runs an attempt: for the long reads that end under the head lock
    (``verify``, ``rebuild``)."""
    clock = clock or monotonic
    sleep = sleep or pause
    deadline = clock() + RETRY_FOR
    number = 0
    while True:
        number += 1
        try:
            return operation()
        except exc.DBAPIError as error:
            if not is_conflict(error):
                raise
            if clock() >= deadline:
                raise gave_up(number, error) from error
        sleep(random.uniform(0, min(MAX_BACKOFF, 0.001 * 2**number)))


def gave_up(attempts: int, error: Exception) -> StoreUnavailable:
    """The error of a call whose conflicts outlasted :data:`RETRY_FOR`."""
    orig = getattr(error, "orig", None) or error
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return StoreUnavailable(
        f"database busy: gave up after {attempts} attempts in {RETRY_FOR:g} s ({reason})"
    )


def is_conflict(error: Exception) -> bool:
    """True for errors that another writer caused and a fresh attempt may not meet."""
    if isinstance(error, ConcurrencyError | TextNotStored | exc.IntegrityError):
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
