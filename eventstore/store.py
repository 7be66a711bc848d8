"""Appending to the log: one stream's batch, atomically, in the caller's transaction.

Every append first locks the head row (``SELECT ... FOR UPDATE``; on SQLite the
transaction already holds the database's write lock from ``BEGIN IMMEDIATE``). Under that
lock it checks the stream's version, numbers the events after the head's position, chains
their hashes and moves the head. The lock is held until the caller commits, so positions
are handed out in commit order with no gaps: a reader tailing by position never misses an
event that commits later with a lower position.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.chain import link
from eventstore.errors import ConcurrencyError, EventIdConflict
from eventstore.recorded import NewEvent, canonical_json
from eventstore.schema import HEAD_ROW_ID, events, head
from eventstore.types import UUIDBytes


@attrs.frozen
class AppendResult:
    """Where a batch landed; ``duplicate`` when it had been stored before and nothing was
    written now (an idempotent retry)."""

    positions: tuple[int, ...]
    duplicate: bool = False

    @property
    def last_position(self) -> int:
        return self.positions[-1]


@attrs.frozen
class Head:
    """The log's head as locked by the current transaction."""

    position: int
    hash: bytes
    last_master_id: int


def read_head(conn: Connection) -> Head:
    """The head as the transaction's snapshot sees it, without a lock (for
    :func:`append_after`; read it before the stream version it goes with)."""
    row = conn.execute(
        sa.select(head.c.position, head.c.hash, head.c.last_master_id).where(
            head.c.id == HEAD_ROW_ID
        )
    ).one()
    return Head(row.position, bytes(row.hash), row.last_master_id)


def lock_head(conn: Connection) -> Head:
    """Lock the head row until the transaction ends and return it."""
    row = conn.execute(
        sa.select(head.c.position, head.c.hash, head.c.last_master_id)
        .where(head.c.id == HEAD_ROW_ID)
        .with_for_update()
    ).one()
    return Head(row.position, bytes(row.hash), row.last_master_id)


def append(
    conn: Connection,
    master_id: int,
    expected_version: int,
    batch: Sequence[NewEvent],
    *,
    locked: Head | None = None,
) -> AppendResult:
    """Append ``batch`` to the stream of ``master_id``, whose version must be
    ``expected_version``; the events get versions ``expected_version + 1``, ... .

    Raises :class:`ConcurrencyError` when the stream moved on, unless this very batch is
    what moved it (then its original positions are returned and nothing is written), and
    :class:`EventIdConflict` when an event id of the batch is stored, but not as this very
    batch of this stream at these versions.

    ``locked`` is the head as :func:`lock_head` returned it earlier in this transaction,
    with nothing appended since, from a caller that read ``expected_version`` after taking
    that lock (so it cannot be stale): the append then skips locking and checking again.
    """
    if not batch:
        raise ValueError("append needs at least one event")
    if locked is None:
        locked = lock_head(conn)
        actual = stream_version(conn, master_id, locking=True)
    else:
        actual = expected_version
    if actual != expected_version:
        stored = _stored_positions(conn, master_id, expected_version, batch)
        if stored is not None:
            return AppendResult(stored, duplicate=True)
        raise ConcurrencyError(master_id, expected_version, actual)

    rows = _rows(locked, master_id, expected_version, batch)
    try:
        conn.execute(events.insert(), rows)
    except sa.exc.IntegrityError as error:
        # Versions were checked under the lock, so only an event id can collide.
        raise EventIdConflict([str(new.event_id) for new in batch]) from error
    conn.execute(_move_head(locked, rows, master_id))
    return AppendResult(tuple(row["position"] for row in rows))


#: A statement of the caller's, with its parameters, to run along with an append.
Also = tuple[sa.Update, Mapping[str, Any]]


def append_after(
    conn: Connection,
    seen: Head,
    master_id: int,
    expected_version: int,
    batch: Sequence[NewEvent],
    *,
    also: Also | None = None,
) -> AppendResult:
    """Append ``batch`` right after ``seen``, the head as read (without a lock) in the
    same snapshot as ``expected_version``, and run ``also`` (the caller's own update with
    its parameters, such as its view row) in the same transaction.

    The head moves only if it is still ``seen`` when this transaction takes its lock; then
    nothing was appended since that snapshot, so ``expected_version`` is current. If it
    moved, :class:`ConcurrencyError` is raised and nothing is written: the caller retries on
    fresh state. On PostgreSQL the three writes are one statement (data-modifying CTEs):
    with the reading statement and the commit, as many round trips as Buildbot's own
    heartbeat.
    """
    if not batch:
        raise ValueError("append needs at least one event")
    rows = _rows(seen, master_id, expected_version, batch)
    params = {
        "seen_position": seen.position,
        "seen_hash": seen.hash,
        "new_position": rows[-1]["position"],
        "new_hash": rows[-1]["hash"],
        "last_master_id": max(seen.last_master_id, master_id),
    }
    try:
        if conn.dialect.name == "postgresql":
            params.update(
                (f"r{i}_{name}", value) for i, row in enumerate(rows) for name, value in row.items()
            )
            if also is not None:
                params.update(also[1])
            statement = _one_statement(len(rows), None if also is None else also[0])
            claimed: int = conn.execute(statement, params).scalar_one()
        elif conn.dialect.name == "mysql" and getattr(conn.dialect, "is_mariadb", False):
            claimed = _append_in_one_compound(conn, rows, params, also)
        else:
            claimed = conn.execute(_MOVE_HEAD, params).rowcount
            if claimed:
                conn.execute(events.insert(), rows)
                if also is not None:
                    conn.execute(*also)
    except sa.exc.IntegrityError as error:
        raise EventIdConflict([str(new.event_id) for new in batch]) from error
    if not claimed:
        raise ConcurrencyError(master_id, expected_version, None)
    return AppendResult(tuple(row["position"] for row in rows))


#: Move the head from the position and hash seen to the new ones, if it is still there.
_MOVE_HEAD = (
    head.update()
    .where(
        head.c.id == sa.literal_column(str(HEAD_ROW_ID)),
        head.c.position == sa.bindparam("seen_position"),
        head.c.hash == sa.bindparam("seen_hash"),
    )
    .values(
        position=sa.bindparam("new_position"),
        hash=sa.bindparam("new_hash"),
        last_master_id=sa.bindparam("last_master_id"),
    )
)

_COLUMNS = tuple(column.name for column in events.columns)


@functools.cache
def _one_statement(count: int, also: sa.Update | None) -> sa.Select[int]:
    """PostgreSQL: move the head, insert ``count`` rows (parameters ``r<i>_<column>``) and
    run ``also``, in one statement; the insert and ``also`` happen only if the head moved.
    Selects 1 if it did, else 0. Built once per shape, so SQLAlchemy's cache serves it."""
    claim = _MOVE_HEAD.returning(head.c.id).cte("moved")
    chosen = [
        sa.select(
            *(sa.bindparam(f"r{i}_{name}", type_=events.c[name].type) for name in _COLUMNS)
        ).select_from(claim)
        for i in range(count)
    ]
    source = chosen[0] if count == 1 else sa.union_all(*chosen)
    statement = sa.select(sa.func.count()).select_from(claim)
    statement = statement.add_cte(events.insert().from_select(_COLUMNS, source).cte("appended"))
    if also is not None:
        statement = statement.add_cte(also.where(sa.exists(sa.select(claim.c.id))).cte("also"))
    return statement


#: The message of the error a MariaDB compound statement raises when the head had moved.
_MOVED_ON = "mastertrail: the log moved on since it was read"


def _append_in_one_compound(
    conn: Connection, rows: list[dict[str, Any]], params: dict[str, Any], also: Also | None
) -> int:
    """MariaDB: the three writes in one anonymous compound statement (``BEGIN NOT ATOMIC``,
    one round trip, no multi-statement flag needed on the connection). It signals an error
    and writes nothing when the head had moved; returns 1 when it wrote, 0 when it did not."""
    dialect = conn.dialect
    event_id = UUIDBytes()
    for i, row in enumerate(rows):
        for name, value in row.items():
            params[f"r{i}_{name}"] = (
                event_id.process_bind_param(value, dialect) if name == "event_id" else value
            )
    if also is not None:
        params.update(also[1])
    try:
        conn.exec_driver_sql(
            _compound(len(rows), None if also is None else also[0], dialect), params
        )
    except sa.exc.DBAPIError as error:
        if _MOVED_ON in str(error.orig):
            return 0
        raise
    return 1


@functools.cache
def _compound(count: int, also: sa.Update | None, dialect: sa.Dialect) -> str:
    def sql(statement: sa.ClauseElement) -> str:
        return str(statement.compile(dialect=dialect))

    insert = events.insert().values(
        [{name: sa.bindparam(f"r{i}_{name}") for name in _COLUMNS} for i in range(count)]
    )
    parts = [
        sql(_MOVE_HEAD),
        f"IF ROW_COUNT() = 0 THEN SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = '{_MOVED_ON}'; END IF",
        sql(insert),
    ]
    if also is not None:
        parts.append(sql(also))
    return "BEGIN NOT ATOMIC\n" + ";\n".join(parts) + ";\nEND"


def _rows(
    after: Head, master_id: int, expected_version: int, batch: Sequence[NewEvent]
) -> list[dict[str, Any]]:
    """The stored rows of ``batch``, numbered and chained after ``after``."""
    rows, previous, position = [], after.hash, after.position
    for offset, new in enumerate(batch):
        position += 1
        row: dict[str, Any] = {
            "position": position,
            "event_id": new.event_id,
            "master_id": master_id,
            "version": expected_version + 1 + offset,
            "type": new.type,
            "schema_version": new.schema_version,
            "data": canonical_json(new.data),
            "metadata": canonical_json(new.metadata),
            "recorded_at": new.recorded_at,
        }
        previous = row["hash"] = link(previous, **row)
        rows.append(row)
    return rows


def _move_head(before: Head, rows: list[dict[str, Any]], master_id: int) -> sa.Update:
    """The update moving the head from ``before`` past ``rows``."""
    return (
        head.update()
        .where(head.c.id == HEAD_ROW_ID)
        .values(
            position=rows[-1]["position"],
            hash=rows[-1]["hash"],
            last_master_id=max(before.last_master_id, master_id),
        )
    )


def allocate_master_id(conn: Connection, *, above: int = 0) -> int:
    """A master id no event of the log uses, greater than ``above``; reserved until the
    transaction ends (it locks the head row)."""
    locked = lock_head(conn)
    master_id = max(locked.last_master_id, above) + 1
    conn.execute(head.update().where(head.c.id == HEAD_ROW_ID).values(last_master_id=master_id))
    return master_id


def stream_version(conn: Connection, master_id: int, *, locking: bool = False) -> int:
    """The version of the newest event of ``master_id`` (0 for an empty stream).

    With ``locking``, MariaDB reads the newest committed row even under REPEATABLE READ
    (a locking read); PostgreSQL's READ COMMITTED statement snapshot and SQLite's single
    writer already see it.
    """
    query = (
        sa.select(events.c.version)
        .where(events.c.master_id == master_id)
        .order_by(events.c.version.desc())
        .limit(1)
    )
    if locking and conn.dialect.name in ("mysql", "mariadb"):
        query = query.with_for_update(read=True)
    return conn.execute(query).scalar() or 0


def _stored_positions(
    conn: Connection, master_id: int, expected_version: int, batch: Sequence[NewEvent]
) -> tuple[int, ...] | None:
    """The positions of ``batch`` if it is stored exactly as appending it now would store
    it (same stream, same versions, same order); None if none of its ids is stored."""
    ids = [new.event_id for new in batch]
    found = {
        row.event_id: row
        for row in conn.execute(
            sa.select(
                events.c.event_id, events.c.position, events.c.master_id, events.c.version
            ).where(events.c.event_id.in_(ids))
        )
    }
    if not found:
        return None
    same_batch = len(found) == len(ids) and all(
        (found[event_id].master_id, found[event_id].version)
        == (master_id, expected_version + 1 + offset)
        for offset, event_id in enumerate(ids)
    )
    if not same_batch:
        raise EventIdConflict([str(i) for i in ids if i in found])
    return tuple(found[event_id].position for event_id in ids)
