"""Appending to the log: one stream's batch, atomically, in the caller's transaction.

Every append first locks the head row (``SELECT ... FOR UPDATE``; on SQLite the
transaction already holds the database's write lock from ``BEGIN IMMEDIATE``). Under that
lock it checks the stream's version, numbers the events after the head's position, chains
their hashes and moves the head. The lock is held until the caller commits, so positions
are handed out in commit order with no gaps: a reader tailing by position never misses an
event that commits later with a lower position.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import fused, idempotency, texts
from eventstore.chain import extend, link_tail
from eventstore.errors import ConcurrencyError, EventIdConflict, HeadMissing
from eventstore.fused import Also
from eventstore.recorded import NewEvent, canonical_json
from eventstore.schema import HEAD_ROW_ID, events, head


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


@attrs.frozen
class AppendResult:
    """Where a batch landed and the hash of its last event, which the head now holds;
    ``duplicate`` when it had been stored before and nothing was written now (an idempotent
    retry; no hash then)."""

    positions: tuple[int, ...]
    duplicate: bool = False
    hash: bytes | None = None

    @property
    def last_position(self) -> int:
        return self.positions[-1]


_HEAD_ROW = sa.select(head.c.position, head.c.hash, head.c.last_master_id).where(
    head.c.id == HEAD_ROW_ID
)


def read_head(conn: Connection) -> Head:
    """The head as the transaction's snapshot sees it, without a lock (for
    :func:`append_after`; read it before the stream version it goes with). Raises
    :class:`HeadMissing` when the row is gone."""
    return _head(conn.execute(_HEAD_ROW).first())


def lock_head(conn: Connection) -> Head:
    """Lock the head row until the transaction ends and return it; raises
    :class:`HeadMissing` when the row is gone."""
    return _head(conn.execute(_HEAD_ROW.with_for_update()).first())


def _head(row: Any) -> Head:
    if row is None:
        raise HeadMissing()
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
        stored = idempotency.stored_positions(conn, master_id, expected_version, batch)
        if stored is not None:
            return AppendResult(stored, duplicate=True)
        raise ConcurrencyError(master_id, expected_version, actual)

    rows = _rows(conn, locked, master_id, expected_version, batch, locked=True)
    # Versions were checked under the lock, so only an event id can collide, and the head
    # is where it was locked.
    params = _head_params(locked, rows, master_id)
    if not _write(conn, batch, lambda: fused.write(conn, rows, params, None)):
        raise ConcurrencyError(master_id, expected_version, None)  # the head was not locked
    return _appended(rows)


def append_after(
    conn: Connection,
    seen: Tip,
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
    trips as Buildbot's own heartbeat. Read ``seen`` before ``expected_version``; if this
    raises, roll the transaction back.
    """
    if not batch:
        raise ValueError("append needs at least one event")
    rows = _rows(conn, seen, master_id, expected_version, batch)
    written = _write(
        conn, batch, lambda: fused.write(conn, rows, _head_params(seen, rows, master_id), also)
    )
    if not written:
        raise ConcurrencyError(master_id, expected_version, None)
    return _appended(rows)


def append_chained(
    conn: Connection,
    master_id: int,
    version: int,
    last_hash: bytes | None,
    new: NewEvent,
    *,
    also: Also | None = None,
) -> AppendResult:
    """Append the event ``new`` to the stream of ``master_id`` with nothing read first:
    the database numbers it after the head as it stands once this transaction holds the
    head's lock, and chains its hash there. ``also`` (the caller's own update with its
    parameters) runs in the same statement.

    ``version`` is the stream's version, and ``last_hash`` the hash of its event at that
    version (None for an empty stream). The append happens only if that event is the
    stream's newest: its hash chains the whole log up to it, so the stream, and all it
    says, is then exactly what the caller knows.

    Only where :func:`eventstore.fused.chains_in_database` holds (PostgreSQL, MariaDB): a
    writer that knows its stream appends in one statement however many other writers moved
    the head since. Raises :class:`ConcurrencyError` if the stream is elsewhere; then roll
    the transaction back.
    """
    if (last_hash is None) != (version == 0):
        raise ValueError("last_hash is the hash of the stream's newest event: None if empty")
    row, tail = _chained_row(conn, master_id, version, new)
    last = None if last_hash is None else (version, last_hash)
    written = _write(conn, [new], lambda: fused.write_chained(conn, row, tail, last, also))
    if written is None:
        raise ConcurrencyError(master_id, version, None)
    return AppendResult((written[0],), hash=written[1])


W = TypeVar("W")


def _write(conn: Connection, batch: Sequence[NewEvent], write: Callable[[], W]) -> W:
    """Run ``write``, its driver errors made typed: a text it names that is not stored
    (:class:`~eventstore.errors.TextNotStored`), or an event id stored already."""
    try:
        return write()
    except sa.exc.DBAPIError as error:
        missing = texts.not_stored(conn, error)
        if missing is not None:
            raise missing from error
        if isinstance(error, sa.exc.IntegrityError):
            raise EventIdConflict([str(new.event_id) for new in batch]) from error
        raise


def _chained_row(
    conn: Connection, master_id: int, expected_version: int, new: NewEvent
) -> tuple[dict[str, Any], bytes]:
    """The stored row of ``new`` but its position and hash, and the tail of its link
    (:func:`eventstore.chain.link_tail`), its type name and metadata stored as texts."""
    metadata = canonical_json(new.metadata)
    digests = _stored_texts(conn, [new.type, metadata], locked=False)
    version = expected_version + 1
    stored_id = idempotency.stored_id(conn, new, master_id, version)
    return _own_columns(new, stored_id, master_id, version, digests, metadata)


def _stored_texts(conn: Connection, values: list[str], *, locked: bool) -> dict[str, bytes]:
    """The digests of ``values``, the texts among them not known to be stored stored in
    this transaction under the head's lock (taken here unless ``locked``): one writer at
    a time stores texts, so none waits for another's while holding a text of its own."""
    digests = {value: texts.digest(value) for value in values}
    missing = texts.unknown(conn, digests)
    if missing and not locked:
        missing = texts.find(conn, missing)  # stored already: no lock needed
        if missing:
            lock_head(conn)
    if missing:
        texts.store(conn, missing)
    return digests


def _rows(
    conn: Connection,
    after: Tip,
    master_id: int,
    expected_version: int,
    batch: Sequence[NewEvent],
    *,
    locked: bool = False,
) -> list[dict[str, Any]]:
    """The stored rows of ``batch``, numbered and chained after ``after``, their type names
    and metadata stored as texts (``locked``: this transaction holds the head's lock)."""
    metadata = [canonical_json(new.metadata) for new in batch]
    ids = _stored_texts(conn, [new.type for new in batch] + metadata, locked=locked)
    rows, previous, position = [], after.hash, after.position
    for offset, new in enumerate(batch):
        position += 1
        version = expected_version + 1 + offset
        stored_id = idempotency.stored_id(conn, new, master_id, version)
        own, tail = _own_columns(new, stored_id, master_id, version, ids, metadata[offset])
        previous = extend(previous, position, tail)
        rows.append({"position": position, **own, "hash": previous})
    return rows


def _own_columns(
    new: NewEvent,
    stored_id: uuid.UUID | None,
    master_id: int,
    version: int,
    digests: dict[str, bytes],
    metadata: str,
) -> tuple[dict[str, Any], bytes]:
    """The columns of ``new`` that do not depend on where it lands (all but position and
    hash; its type name and metadata by the digests the write finds their texts by), its
    id stored as ``stored_id``, and the tail of its link."""
    data = canonical_json(new.data)
    row = {
        "event_id": stored_id,
        "master_id": master_id,
        "version": version,
        "type_digest": digests[new.type],
        "schema_version": new.schema_version,
        "data": data,
        "metadata_digest": digests[metadata],
        "recorded_at": new.recorded_at,
    }
    tail = link_tail(
        event_id=new.event_id,
        master_id=master_id,
        version=version,
        type=new.type,
        schema_version=new.schema_version,
        data=data,
        metadata=metadata,
        recorded_at=new.recorded_at,
    )
    return row, tail


def _head_params(before: Tip, rows: list[dict[str, Any]], master_id: int) -> dict[str, Any]:
    """The parameters of :data:`~eventstore.fused.MOVE_HEAD` moving the head from
    ``before`` past ``rows``."""
    return {
        "seen_position": before.position,
        "seen_hash": before.hash,
        "new_position": rows[-1]["position"],
        "new_hash": rows[-1]["hash"],
        "head_master_id": master_id,
    }


def _appended(rows: list[dict[str, Any]]) -> AppendResult:
    return AppendResult(tuple(row["position"] for row in rows), hash=rows[-1]["hash"])


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
