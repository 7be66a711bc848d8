"""SQLite's writer: three statements, each sent at the driver's cost
(:mod:`eventstore.prebuilt`).

The transaction holds the database's write lock from ``BEGIN IMMEDIATE``
(:func:`eventstore.engine.begin_write`), so locking the head costs nothing more; the head
update still checks that the head is where the writer saw it. SQLite has no SHA-256 to
chain with: :class:`~eventstore.writer.AfterOwn` locks and reads
(:meth:`eventstore.writer.Writer.append_own`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from eventstore import prebuilt
from eventstore.fused import INSERT, id_bytes
from eventstore.head import MOVE_HEAD
from eventstore.writer import Row, ViewUpdate, Writer


def write_in_three(
    conn: Connection, rows: list[Row], head_params: dict[str, Any], view_update: ViewUpdate | None
) -> bool:
    """Move the head if it is still where it was seen, insert the rows, run the caller's
    update: three statements; False (nothing written) if the head had moved."""
    if not prebuilt.execute(conn, MOVE_HEAD, head_params).rowcount:
        return False
    prebuilt.execute(conn, INSERT, [{**row, "event_id": id_bytes(row["event_id"])} for row in rows])
    if view_update is not None:
        prebuilt.execute(conn, *view_update)
    return True


class SQLiteWriter(Writer):
    """The writer of SQLite (and of any database without a writer of its own)."""

    def write(
        self,
        conn: Connection,
        rows: list[Row],
        head_params: dict[str, Any],
        view_update: ViewUpdate | None,
    ) -> bool:
        return write_in_three(conn, rows, head_params, view_update)
