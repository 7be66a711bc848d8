"""The base of a writer whose database chains an event's hash itself (PostgreSQL,
MariaDB): an :class:`~eventstore.expect.AfterOwn` append is one statement, with nothing
read first. How the work is shared between writers is in :mod:`eventstore.writer`.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.errors import ConcurrencyError, EventIdConflict
from eventstore.expect import AfterOwn, AppendResult, ViewUpdate
from eventstore.fused import Row, typed_errors
from eventstore.head import Tip
from eventstore.recorded import NewEvent
from eventstore.writer import Writer

#: What a statement sent through the driver returns.
Result = sa.CursorResult[*tuple[Any, ...]]


class ChainingWriter(Writer):
    """A writer whose database chains an event's hash itself: :class:`AfterOwn` is one
    statement, with nothing read first."""

    chains_in_database: ClassVar[bool] = True

    def append_own(
        self,
        conn: Connection,
        master_id: int,
        expect: AfterOwn,
        new: NewEvent,
        view_update: ViewUpdate | None,
    ) -> AppendResult:
        row, tail = self.own_row(conn, master_id, expect.version, new)
        last = None if expect.last is None else (expect.version, expect.last.hash)
        try:
            written = typed_errors(
                conn, [new], lambda: self.write_chained(conn, row, tail, last, view_update)
            )
        except EventIdConflict:
            # A stream that moved on is the conflict to report, whichever index the
            # database named; and the head may have moved already.
            moved = self.stream_moved(conn, master_id, expect.version)
            conn.rollback()
            if moved:
                raise ConcurrencyError(master_id, expect.version, None) from None
            raise
        if written is None:
            conn.rollback()  # the database may have moved the head already
            raise ConcurrencyError(master_id, expect.version, None)
        return AppendResult((written.position,), hash=written.hash)

    def write_chained(
        self,
        conn: Connection,
        row: Row,
        tail: bytes,
        last: tuple[int, bytes] | None,
        view_update: ViewUpdate | None,
    ) -> Tip | None:
        """Insert the event ``row`` (every column but ``position`` and ``hash``) right
        after the head as this transaction finds it once it holds the head's lock,
        chaining its hash in the database (``tail`` as :func:`eventstore.links.link_tail`
        made it), move the head and run ``view_update``: one statement. ``last`` is the
        version and hash of the stream's newest event (None for an empty stream): if the
        stream has no such event, or an event after it, nothing is inserted. Returns
        where the event landed, or None (then roll the transaction back)."""
        sql, params = self.chained_statement(conn, row, tail, last, view_update)
        try:
            found = self.run(conn, sql, params).first()
        except sa.exc.DBAPIError as error:
            if self.found_moved(error):
                return None
            raise
        return None if found is None else Tip(int(found[0]), bytes(found[1]))

    def run(self, conn: Connection, sql: str, params: dict[str, Any]) -> Result:
        """Send the statement ``sql`` (the driver's own parameter style) with ``params``."""
        return conn.exec_driver_sql(sql, params)

    def found_moved(self, error: sa.exc.DBAPIError) -> bool:
        """Whether :meth:`write_chained`'s ``error`` says the stream was not as expected
        (nothing was inserted): here the stream's constraint refused the event."""
        return _STREAM_CONSTRAINT in str(error.orig)

    def stream_moved(self, conn: Connection, master_id: int, version: int) -> bool:
        """After :meth:`write_chained` failed on an event id: whether the stream had moved
        past ``version`` too. Here the database checks the stream's constraint before
        the id's index (in the order they were made), so the id was the conflict."""
        return False

    def chained_statement(
        self,
        conn: Connection,
        row: Row,
        tail: bytes,
        last: tuple[int, bytes] | None,
        view_update: ViewUpdate | None,
    ) -> tuple[str, dict[str, Any]]:
        """The SQL text and driver parameters of :meth:`write_chained`."""
        params = {**row, "tail": tail, **({} if view_update is None else view_update[1])}
        if last is not None:
            params["last_version"], params["last_hash"] = last
        # The driver's own call: no SQLAlchemy type converts the id.
        params["event_id"] = self.event_id_param(row["event_id"])
        statement = None if view_update is None else view_update[0]
        return self.chained_sql(statement, conn, last is None), params

    def event_id_param(self, stored: uuid.UUID | None) -> object:
        """A stored event id as this database's driver takes it (None: derived)."""
        raise NotImplementedError

    def chained_sql(self, view_update: sa.Update | None, conn: Connection, first: bool) -> str:
        """The SQL text of :meth:`write_chained` on ``conn``, running ``view_update`` too;
        ``first``: the stream is empty, there is no newest event to check."""
        raise NotImplementedError


#: The stream constraint, named in the error of an insert that lost a race for a version.
_STREAM_CONSTRAINT = "mastertrail_events_stream"
