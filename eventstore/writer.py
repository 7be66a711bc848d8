"""Appending to the log: one writer per database, behind one call.

``writer_for(conn).append(conn, master_id, expect, batch, view_update=...)`` appends one
stream's batch, atomically, in the caller's transaction, and runs the caller's own update
(its view row) along with it. ``expect`` says what the caller knows of the stream and the
log, and the writer picks the cheapest write that checks exactly that:

* :class:`StreamAt`: the stream's version, nothing else. The writer locks the head,
  checks the version under the lock, and writes (the locking append).
* :class:`AfterSeen`: the head as it was read, without a lock, with the stream's version
  in one snapshot (:func:`eventstore.head.with_head`), or the tip the caller's own last
  write left. The writer moves the head only if it is still there (then nothing was
  appended since, and the version is current); else it writes nothing and raises
  :class:`ConcurrencyError`, and the transaction goes on.
* :class:`AfterOwn`: the stream's newest event, which the caller wrote itself. Where the
  database can chain hashes (:attr:`Writer.chains_in_database`), it numbers the event
  after wherever the head is and checks the stream's newest event by version and hash: one
  statement, however many other writers moved the head since. Elsewhere the writer locks
  the head and checks the same by reading. A miss raises :class:`ConcurrencyError` after
  the writer rolled the transaction back (the database may have moved the head already).

Each database's SQL lives in its own module (:mod:`eventstore.sqlite_writer`,
:mod:`eventstore.postgresql_writer`, :mod:`eventstore.mariadb_writer`); this one holds
how they share the work: numbering and chaining the rows, storing their texts, checking
the version under the head's lock. The expectations are in :mod:`eventstore.expect`, the
pieces of the statements every writer sends in :mod:`eventstore.fused`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import idempotency, texts
from eventstore.errors import ConcurrencyError, TextNotStored
from eventstore.expect import (
    AfterOwn,
    AfterSeen,
    AppendResult,
    Expectation,
    StreamAt,
    ViewUpdate,
)
from eventstore.fused import Row, head_params, newest_version, own_columns, typed_errors
from eventstore.head import Head, Tip, lock_head
from eventstore.links import extend
from eventstore.recorded import NewEvent, canonical_json
from eventstore.schema import events
from eventstore.session import commits_itself

__all__ = [
    "AfterOwn",
    "AfterSeen",
    "AppendResult",
    "Expectation",
    "Row",
    "StreamAt",
    "ViewUpdate",
    "Writer",
    "dialect_writer",
    "newest_version",
    "writer_for",
]


class Writer:
    """Appends to the log of one kind of database. Subclasses send the SQL; see the
    module's docstring for what each expectation checks."""

    #: Whether :class:`AfterOwn` is one statement, chained by the database itself.
    chains_in_database: ClassVar[bool] = False
    #: Whether reads under the head's lock must be locking reads to see the newest
    #: committed rows (MariaDB's REPEATABLE READ snapshot, if a session runs at it).
    locking_reads: ClassVar[bool] = False
    #: Whether a write on a connection marked :data:`eventstore.session.COMMITTING` is one
    #: statement ending with its own ``COMMIT`` (MariaDB's: see :func:`commands.retry.run`).
    commits_inside: ClassVar[bool] = False

    def append(
        self,
        conn: Connection,
        master_id: int,
        expect: Expectation,
        batch: Sequence[NewEvent],
        *,
        view_update: ViewUpdate | None = None,
    ) -> AppendResult:
        """Append ``batch`` to the stream of ``master_id`` after what ``expect`` says, the
        events getting versions ``expect.version + 1``, ..., and run ``view_update`` in the
        same transaction.

        Raises :class:`ConcurrencyError` when the stream or the log is not as expected
        (nothing written), unless this very batch is what moved the stream (an idempotent
        retry of :class:`StreamAt`: its positions are returned, ``duplicate``, and neither
        it nor ``view_update`` is written), and :class:`EventIdConflict` when an event id
        of the batch is stored, but not as this very batch of this stream.
        """
        if not batch:
            raise ValueError("append needs at least one event")
        if isinstance(expect, StreamAt):
            return self.append_locked(conn, None, master_id, expect.version, batch, view_update)
        if isinstance(expect, AfterSeen):
            seen = expect.seen
            rows = self.rows(conn, seen, master_id, expect.version, batch, locked=False)
            return self._written(conn, seen, expect.version, master_id, batch, rows, view_update)
        if len(batch) != 1:
            raise ValueError("an append after the caller's own event takes one event")
        return self.append_own(conn, master_id, expect, batch[0], view_update)

    def append_locked(
        self,
        conn: Connection,
        locked: Head | None,
        master_id: int,
        version: int,
        batch: Sequence[NewEvent],
        view_update: ViewUpdate | None,
    ) -> AppendResult:
        """The locking append. ``locked`` is the head as :func:`lock_head` returned it
        earlier in this transaction, with nothing appended since, from a caller that read
        ``version`` after taking that lock: the version is then not read again."""
        if locked is None:
            locked = lock_head(conn)
            actual = self.stream_version(conn, master_id)
        else:
            actual = version
        if actual != version:
            stored = idempotency.stored_positions(conn, master_id, version, batch)
            if stored is not None:
                return AppendResult(stored, duplicate=True)
            raise ConcurrencyError(master_id, version, actual)
        # Versions were checked under the lock, so only an event id can collide, and the
        # head is where it was locked.
        rows = self.rows(conn, locked, master_id, version, batch, locked=True)
        return self._written(conn, locked, version, master_id, batch, rows, view_update)

    def append_own(
        self,
        conn: Connection,
        master_id: int,
        expect: AfterOwn,
        new: NewEvent,
        view_update: ViewUpdate | None,
    ) -> AppendResult:
        """:class:`AfterOwn` where the database cannot chain: the head locked, the stream's
        newest event read and compared, then the locking append's write."""
        locked = lock_head(conn)
        query = (
            sa.select(events.c.version, events.c.hash)
            .where(events.c.master_id == master_id)
            .order_by(events.c.version.desc())
            .limit(1)
        )
        if self.locking_reads:
            query = query.with_for_update(read=True)
        newest = conn.execute(query).first()
        found = None if newest is None else (newest.version, bytes(newest.hash))
        last = expect.last
        if found != (None if last is None else (expect.version, last.hash)):
            conn.rollback()
            raise ConcurrencyError(master_id, expect.version, None)
        return self.append_locked(conn, locked, master_id, expect.version, [new], view_update)

    def stream_version(self, conn: Connection, master_id: int) -> int:
        """The version of the stream's newest committed event, read under the head's
        lock (0 for an empty stream)."""
        query = newest_version(master_id, locking=self.locking_reads)
        return int(conn.execute(query).scalar() or 0)

    # -- what each database sends ------------------------------------------------------------

    def write(
        self, conn: Connection, rows: list[Row], head_params: dict[str, Any], view_update: Any
    ) -> bool:
        """Move the head (:data:`eventstore.head.MOVE_HEAD` with ``head_params``), insert
        ``rows`` and run ``view_update``; False, with nothing written, if the head had
        moved."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------

    def _written(
        self,
        conn: Connection,
        after: Tip,
        version: int,
        master_id: int,
        batch: Sequence[NewEvent],
        rows: list[Row],
        view_update: ViewUpdate | None,
    ) -> AppendResult:
        params = head_params(after, rows, master_id)
        if not typed_errors(conn, batch, lambda: self.write(conn, rows, params, view_update)):
            raise ConcurrencyError(master_id, version, None)
        return AppendResult(tuple(row["position"] for row in rows), hash=rows[-1]["hash"])

    def stored_texts(
        self, conn: Connection, values: list[str], *, locked: bool
    ) -> dict[str, bytes]:
        """The digests of ``values``, the texts among them not known to be stored stored in
        this transaction under the head's lock (taken here unless ``locked``): one writer
        at a time stores texts, so none waits for another's while holding a text of its
        own. A statement that is a transaction of its own (:func:`~eventstore.session.
        commits_itself`) stores none: :class:`TextNotStored` when one is missing."""
        digests = {value: texts.digest(value) for value in values}
        missing = texts.unknown(conn, digests)
        if missing and not locked:
            missing = texts.find(conn, missing)  # stored already: no lock needed
            if missing and commits_itself(conn):
                raise TextNotStored()  # no transaction to store them in with the event
            if missing:
                lock_head(conn)
        if missing:
            texts.store(conn, missing)
        return digests

    def rows(
        self,
        conn: Connection,
        after: Tip,
        master_id: int,
        version: int,
        batch: Sequence[NewEvent],
        *,
        locked: bool,
    ) -> list[Row]:
        """The stored rows of ``batch``, numbered and chained after ``after``, their type
        names and metadata stored as texts (``locked``: this transaction holds the head's
        lock)."""
        metadata = [canonical_json(new.metadata) for new in batch]
        digests = self.stored_texts(conn, [new.type for new in batch] + metadata, locked=locked)
        rows, previous, position = [], after.hash, after.position
        for offset, new in enumerate(batch):
            position += 1
            at = version + 1 + offset
            stored_id = idempotency.stored_id(conn, new, master_id, at)
            own, tail = own_columns(new, stored_id, master_id, at, digests, metadata[offset])
            previous = extend(previous, position, tail)
            rows.append({"position": position, **own, "hash": previous})
        return rows

    def own_row(
        self, conn: Connection, master_id: int, version: int, new: NewEvent
    ) -> tuple[Row, bytes]:
        """The stored row of ``new`` at ``version + 1`` but its position and hash, and the
        tail of its link, its texts stored (for a database that chains it)."""
        metadata = canonical_json(new.metadata)
        digests = self.stored_texts(conn, [new.type, metadata], locked=False)
        stored_id = idempotency.stored_id(conn, new, master_id, version + 1)
        return own_columns(new, stored_id, master_id, version + 1, digests, metadata)


#: The writer of each dialect, chosen once.
_WRITERS: weakref.WeakKeyDictionary[sa.Dialect, Writer] = weakref.WeakKeyDictionary()


def writer_for(conn: Connection | sa.Engine) -> Writer:
    """The writer of ``conn``'s database (SQLite, PostgreSQL or MariaDB)."""
    return dialect_writer(conn.dialect)


def dialect_writer(dialect: sa.Dialect) -> Writer:
    """The writer of databases of ``dialect``, chosen once."""
    found = _WRITERS.get(dialect)
    if found is None:
        found = _WRITERS[dialect] = _choose(dialect)
    return found


def _choose(dialect: sa.Dialect) -> Writer:
    # Imported here: each module imports this one for the base class.
    from eventstore.mariadb_writer import MariaDBWriter, MySQLWriter
    from eventstore.postgresql_writer import PostgreSQLWriter
    from eventstore.sqlite_writer import SQLiteWriter

    if dialect.name == "postgresql":
        return PostgreSQLWriter()
    if dialect.name in ("mysql", "mariadb"):
        if getattr(dialect, "is_mariadb", False):
            return MariaDBWriter()
        return MySQLWriter()  # MySQL's compound statements differ: no fused write
    return SQLiteWriter()
