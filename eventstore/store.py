"""Appending to the log: one stream's batch, atomically, in the caller's transaction.

Every append first locks the head row (``SELECT ... FOR UPDATE``; on SQLite the
transaction already holds the database's write lock from ``BEGIN IMMEDIATE``). Under that
lock it checks the stream's version, numbers the events after the head's position, chains
their hashes and moves the head. The lock is held until the caller commits, so positions
are handed out in commit order with no gaps: a reader tailing by position never misses an
event that commits later with a lower position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import fused
from eventstore.chain import link
from eventstore.errors import ConcurrencyError, EventIdConflict
from eventstore.fused import MOVE_HEAD, Also
from eventstore.recorded import NewEvent, canonical_json
from eventstore.schema import HEAD_ROW_ID, events, head
from eventstore.texts import text_ids


@attrs.frozen
class Head:
    """The log's head row: the last position, its hash, and the highest master id used."""

    position: int
    hash: bytes
    last_master_id: int


@attrs.frozen
class AppendResult:
    """Where a batch landed, and the head it left (None for a ``duplicate``: a batch stored
    before, of which nothing was written now, an idempotent retry)."""

    positions: tuple[int, ...]
    duplicate: bool = False
    head: Head | None = None

    @property
    def last_position(self) -> int:
        return self.positions[-1]


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

    rows = _rows(conn, locked, master_id, expected_version, batch)
    try:
        conn.execute(events.insert(), rows)
    except sa.exc.IntegrityError as error:
        # Versions were checked under the lock, so only an event id can collide.
        raise EventIdConflict([str(new.event_id) for new in batch]) from error
    params = _head_params(locked, rows, master_id)
    conn.execute(MOVE_HEAD, params)
    return _result(rows, params)


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
    fresh state. On PostgreSQL and MariaDB the three writes are one statement
    (:mod:`eventstore.fused`): with the reading statement and the commit, as many round
    trips as Buildbot's own heartbeat. Read ``seen`` before ``expected_version``.

    ``seen`` may also be a head this process left behind with its own last append (see
    :mod:`commands.known`): the check is the same. After :class:`ConcurrencyError` nothing
    was written and the transaction may go on, to read afresh and try again; after any
    other error, roll it back.
    """
    if not batch:
        raise ValueError("append needs at least one event")
    rows = _rows(conn, seen, master_id, expected_version, batch)
    params = _head_params(seen, rows, master_id)
    try:
        written = fused.write(conn, rows, params, also)
    except sa.exc.IntegrityError as error:
        raise EventIdConflict([str(new.event_id) for new in batch]) from error
    if not written:
        raise ConcurrencyError(master_id, expected_version, None)
    return _result(rows, params)


def _rows(
    conn: Connection, after: Head, master_id: int, expected_version: int, batch: Sequence[NewEvent]
) -> list[dict[str, Any]]:
    """The stored rows of ``batch``, numbered and chained after ``after``, their type names
    and metadata stored as texts."""
    metadata = [canonical_json(new.metadata) for new in batch]
    ids = text_ids(conn, [new.type for new in batch] + metadata)
    rows, previous, position = [], after.hash, after.position
    for offset, new in enumerate(batch):
        position += 1
        version = expected_version + 1 + offset
        data = canonical_json(new.data)
        previous = link(
            previous,
            position=position,
            event_id=new.event_id,
            master_id=master_id,
            version=version,
            type=new.type,
            schema_version=new.schema_version,
            data=data,
            metadata=metadata[offset],
            recorded_at=new.recorded_at,
        )
        rows.append(
            {
                "position": position,
                "event_id": new.event_id,
                "master_id": master_id,
                "version": version,
                "type_id": ids[new.type],
                "schema_version": new.schema_version,
                "data": data,
                "metadata_id": ids[metadata[offset]],
                "recorded_at": new.recorded_at,
                "hash": previous,
            }
        )
    return rows


def _head_params(before: Head, rows: list[dict[str, Any]], master_id: int) -> dict[str, Any]:
    """The parameters of :data:`~eventstore.fused.MOVE_HEAD` moving the head from
    ``before`` past ``rows``."""
    return {
        "seen_position": before.position,
        "seen_hash": before.hash,
        "seen_last_master_id": before.last_master_id,
        "new_position": rows[-1]["position"],
        "new_hash": rows[-1]["hash"],
        "last_master_id": max(before.last_master_id, master_id),
    }


def _result(rows: list[dict[str, Any]], head_params: dict[str, Any]) -> AppendResult:
    """The positions of ``rows``, appended, and the head ``head_params`` moved to."""
    return AppendResult(tuple(row["position"] for row in rows), head=_moved_to(head_params))


def _moved_to(head_params: dict[str, Any]) -> Head:
    """The head that :data:`~eventstore.fused.MOVE_HEAD` with ``head_params`` leaves."""
    return Head(head_params["new_position"], head_params["new_hash"], head_params["last_master_id"])


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
