"""The log's head row and its lock: where the log ends, and who may append next.

Every append takes the head row's lock (``SELECT ... FOR UPDATE``, or the head update
itself; on SQLite the transaction holds the database's write lock from ``BEGIN
IMMEDIATE``), numbers its events after the head's position, chains their hashes from the
head's hash and moves the head, all before it commits. The lock is held until the commit,
so positions are handed out in commit order with no gaps (``docs/ordering.rst``).

A reader of the head without its lock gets a :class:`Seen`: the tip a writer may append
after (:class:`eventstore.writer.AfterSeen`) only if nothing moved it since. Readers of
other tables add the head to their own statement with :func:`with_head`, so that the head
and what they read come from one snapshot in one round trip.
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.errors import HeadMissing
from eventstore.schema import HEAD_ROW_ID, head


@attrs.frozen
class Tip:
    """Where the log ends: its last position and that event's hash (0 and the genesis hash
    for an empty log)."""

    position: int
    hash: bytes


@attrs.frozen
class Head(Tip):
    """The log's head row: its tip, and the highest master id used."""

    last_master_id: int


_HEAD_ROW = sa.select(head.c.position, head.c.hash, head.c.last_master_id).where(
    head.c.id == HEAD_ROW_ID
)

#: The labels :func:`with_head` gives the head's columns in a caller's statement.
_LABELS = ("head_position", "head_hash", "head_last_master_id")


def read_head(conn: Connection) -> Head:
    """The head as the transaction's snapshot sees it, without a lock. Raises
    :class:`HeadMissing` when the row is gone."""
    return _head(conn.execute(_HEAD_ROW).first())


def lock_head(conn: Connection) -> Head:
    """Lock the head row until the transaction ends and return it; raises
    :class:`HeadMissing` when the row is gone."""
    return _head(conn.execute(_HEAD_ROW.with_for_update()).first())


def with_head(select: sa.Select[Any], onto: sa.FromClause) -> sa.Select[Any]:
    """``select`` (whose FROM is ``onto``) with the head's columns added, read without a
    lock in the same statement: one snapshot, one round trip. Read the result's row with
    :func:`seen_in`."""
    return select.add_columns(
        *(
            column.label(label)
            for column, label in zip(_HEAD_ROW.selected_columns, _LABELS, strict=True)
        )
    ).select_from(onto.outerjoin(head, head.c.id == HEAD_ROW_ID))


def seen_in(row: Any) -> Head:
    """The head a row of a :func:`with_head` statement carries; raises
    :class:`HeadMissing` when the head row is gone."""
    if row.head_position is None:
        raise HeadMissing()
    return Head(row.head_position, bytes(row.head_hash), row.head_last_master_id)


def _head(row: Any) -> Head:
    if row is None:
        raise HeadMissing()
    return Head(row.position, bytes(row.hash), row.last_master_id)


def allocate_master_id(conn: Connection, *, above: int = 0) -> int:
    """A master id no event of the log uses, greater than ``above``; reserved until the
    transaction ends (it locks the head row)."""
    locked = lock_head(conn)
    master_id = max(locked.last_master_id, above) + 1
    conn.execute(head.update().where(head.c.id == HEAD_ROW_ID).values(last_master_id=master_id))
    return master_id


#: Move the head from ``seen_position``/``seen_hash`` to the new position and hash, if it is
#: still there (the lock of an append that locked first makes it so). The highest master id
#: is raised to the appending master's in the database, from the row's own value, never
#: from a value the caller read.
MOVE_HEAD = (
    head.update()
    .where(
        head.c.id == sa.literal_column(str(HEAD_ROW_ID)),
        head.c.position == sa.bindparam("seen_position"),
        head.c.hash == sa.bindparam("seen_hash"),
    )
    .values(
        position=sa.bindparam("new_position"),
        hash=sa.bindparam("new_hash"),
        last_master_id=sa.case(
            (head.c.last_master_id > sa.bindparam("head_master_id"), head.c.last_master_id),
            else_=sa.bindparam("head_master_id"),
        ),
    )
)
