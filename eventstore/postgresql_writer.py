"""PostgreSQL's writer: every append is one statement of data-modifying CTEs.

After a head seen or locked, the insert and the caller's update select from the head
update's RETURNING, so they happen only if it matched. After the caller's own event, the
head update numbers and chains the event itself (``sha256``), under the head's lock, if
the stream's newest event is the one expected.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import prebuilt
from eventstore.chaining_writer import ChainingWriter
from eventstore.fused import (
    CHAINED_COLUMNS,
    COLUMNS,
    event_values,
    one_statement_params,
    row_values,
)
from eventstore.head import MOVE_HEAD
from eventstore.schema import HEAD_ROW_ID, events, head
from eventstore.session import PG_ARM_LOCK_WAIT, commits_itself
from eventstore.writer import Row, ViewUpdate


class PostgreSQLWriter(ChainingWriter):
    """The writer of PostgreSQL."""

    def write(
        self,
        conn: Connection,
        rows: list[Row],
        head_params: dict[str, Any],
        view_update: ViewUpdate | None,
    ) -> bool:
        also = None if view_update is None else view_update[0]
        statement = _with_ctes(len(rows), also, armed=commits_itself(conn))
        params = one_statement_params(rows, head_params, view_update and view_update[1])
        return bool(prebuilt.execute(conn, statement, params).scalar_one())

    def event_id_param(self, stored: uuid.UUID | None) -> object:
        return None if stored is None else str(stored)  # cast in the statement

    def chained_sql(self, view_update: sa.Update | None, conn: Connection, first: bool) -> str:
        return _chained_ctes(view_update, conn.dialect, first, commits_itself(conn))


@functools.cache
def _with_ctes(count: int, also: sa.Update | None, *, armed: bool = False) -> sa.Select[Any]:
    """Data-modifying CTEs whose insert and ``also`` select from the head update's
    RETURNING, so they happen only if it matched; selects 1 if it did, else 0. Built once
    per shape, so SQLAlchemy's compiled cache serves it. ``armed``: the statement is a
    transaction of its own, and sets its lock wait before the head's update waits for the
    head (see :func:`_armed`)."""
    claim = (_armed(MOVE_HEAD) if armed else MOVE_HEAD).returning(head.c.id).cte("moved")
    chosen = [sa.select(*row_values(f"r{i}_").values()).select_from(claim) for i in range(count)]
    source = chosen[0] if count == 1 else sa.union_all(*chosen)
    statement = sa.select(sa.func.count()).select_from(claim)
    statement = statement.add_cte(events.insert().from_select(COLUMNS, source).cte("appended"))
    if also is not None:
        statement = statement.add_cte(also.where(sa.exists(sa.select(claim.c.id))).cte("also"))
    return statement


def _armed(move: sa.Update) -> sa.Update:
    """The head's update ``move``, tested on the value of :data:`~eventstore.session.
    PG_ARM_LOCK_WAIT` in a CTE of its own: PostgreSQL computes it once, before reading the
    head's row, so that the wait for the row's lock is bounded by it."""
    arm = sa.select(sa.literal_column(PG_ARM_LOCK_WAIT).label("armed")).cte("armed")
    return move.where(sa.exists(sa.select(arm.c.armed)))


_MOVED = sa.table("moved")
_CASTS = {
    "event_id": "::uuid",
    "master_id": "::integer",
    "version": "::integer",
    "schema_version": "::smallint",
    "data": "::text",
    "digest": "::bytea",
    "recorded_at": "::bigint",
}


@functools.cache
def _chained_ctes(also: sa.Update | None, dialect: sa.Dialect, first: bool, armed: bool) -> str:
    """The head update numbers and chains the event under the head's lock if the stream's
    newest event is the one expected (its version and hash: the hash chains the whole log
    up to it); the insert selects from its RETURNING, and the stream constraint refuses it
    if an event came after (in a snapshot older than the lock). ``first``: an empty
    stream, with no event to find. ``armed``: the statement is a transaction of its own,
    and sets its lock wait first (see :func:`_armed`)."""
    found = (
        ""
        if first
        else f" AND EXISTS (SELECT 1 FROM {events.name} WHERE master_id = %(master_id)s::integer "
        "AND version = %(last_version)s::integer AND hash = %(last_hash)s::bytea)"
    )
    parts = []
    if armed:
        parts.append(f"armed AS (SELECT {PG_ARM_LOCK_WAIT})")
        found += " AND EXISTS (SELECT 1 FROM armed)"
    parts += [
        f"moved AS (UPDATE {head.name} SET position = position + 1, "
        "hash = sha256(hash || convert_to((position + 1)::text, 'UTF8') || %(tail)s::bytea), "
        "last_master_id = GREATEST(last_master_id, %(master_id)s::integer) "
        f"WHERE id = {HEAD_ROW_ID}{found} RETURNING position, hash)",
        f"appended AS (INSERT INTO {events.name} ({CHAINED_COLUMNS}) "
        f"SELECT position, {event_values(_CASTS)}, hash FROM moved)",
    ]
    if also is not None:
        # Selecting from moved orders the update after the head's: every writer locks the
        # head first, so a view row is never locked before it.
        after_move = also.where(sa.exists(sa.select(sa.literal_column("1")).select_from(_MOVED)))
        parts.append(f"also AS ({after_move.compile(dialect=dialect)})")
    return "WITH " + ",\n".join(parts) + "\nSELECT position, hash FROM moved"
