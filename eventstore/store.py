"""The log's appends as functions of a connection: each goes to the writer of the
connection's database (:mod:`eventstore.writer`), which holds their contract."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.head import Head, Tip, allocate_master_id, lock_head, read_head
from eventstore.recorded import NewEvent
from eventstore.schema import archive_tips, events
from eventstore.writer import (
    AppendResult,
    Expectation,
    StreamAt,
    ViewUpdate,
    newest_version,
    writer_for,
)

__all__ = [
    "AppendResult",
    "Head",
    "Tip",
    "allocate_master_id",
    "append",
    "lock_head",
    "read_head",
    "stream_version",
    "stream_version_of",
]


def append(
    conn: Connection,
    master_id: int,
    expect: Expectation | int,
    batch: Sequence[NewEvent],
    *,
    view_update: ViewUpdate | None = None,
    locked: Head | None = None,
) -> AppendResult:
    """Append ``batch`` to the stream of ``master_id`` after what ``expect`` says (a bare
    int: :class:`~eventstore.writer.StreamAt` that version), with the writer of ``conn``'s
    database (:meth:`eventstore.writer.Writer.append`).

    ``locked`` is the head as :func:`lock_head` returned it earlier in this transaction,
    with nothing appended since, from a caller that read the stream's version after taking
    that lock (so it cannot be stale): the locking append then skips locking and checking.
    """
    if isinstance(expect, int):
        expect = StreamAt(expect)
    writer = writer_for(conn)
    if locked is not None and isinstance(expect, StreamAt):
        if not batch:
            raise ValueError("append needs at least one event")
        return writer.append_locked(conn, locked, master_id, expect.version, batch, view_update)
    return writer.append(conn, master_id, expect, batch, view_update=view_update)


def stream_version(conn: Connection, master_id: int) -> int:
    """The version of the newest event of ``master_id`` (0 for an empty stream)."""
    return int(conn.execute(newest_version(master_id)).scalar() or 0)


def stream_event_at(conn: Connection, master_id: int, version: int) -> tuple[Tip, int] | None:
    """Where the event of ``master_id`` at ``version`` is in the table (its position and
    hash) and its ``recorded_at`` in microseconds; None when the table has no such event.
    One seek of the stream's unique index."""
    row = conn.execute(
        sa.select(events.c.position, events.c.hash, events.c.recorded_at).where(
            events.c.master_id == master_id, events.c.version == version
        )
    ).first()
    if row is None:
        return None
    return Tip(int(row.position), bytes(row.hash)), int(row.recorded_at)


def stream_version_of(master_id: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    """The version of the stream of the master ``master_id`` names (a column of the
    caller's statement), as an expression: NULL for an empty stream. A stream whose
    every event is archived stands at its newest archived tip."""
    hot = (  # not max(): on the system-versioned log MariaDB reads the whole stream for it
        sa.select(events.c.version)
        .where(events.c.master_id == master_id)
        .order_by(events.c.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    tip = (
        sa.select(sa.func.max(archive_tips.c.version))
        .where(archive_tips.c.master_id == master_id)
        .scalar_subquery()
    )
    return sa.func.coalesce(hot, tip)
