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

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.chain import link
from eventstore.errors import ConcurrencyError, EventIdConflict
from eventstore.recorded import NewEvent, canonical_json
from eventstore.schema import HEAD_ROW_ID, events, head


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

    rows, previous, position = [], locked.hash, locked.position
    for offset, new in enumerate(batch):
        position += 1
        row = {
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
        previous = row["hash"] = link(previous, **row)  # type: ignore[arg-type]
        rows.append(row)
    try:
        conn.execute(events.insert(), rows)
    except sa.exc.IntegrityError as error:
        # Versions were checked under the lock, so only an event id can collide.
        raise EventIdConflict([str(new.event_id) for new in batch]) from error
    conn.execute(
        head.update()
        .where(head.c.id == HEAD_ROW_ID)
        .values(
            position=position,
            hash=previous,
            last_master_id=max(locked.last_master_id, master_id),
        )
    )
    return AppendResult(tuple(row["position"] for row in rows))  # type: ignore[misc]


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
