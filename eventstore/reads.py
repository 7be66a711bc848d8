"""Reading the log: one stream, a range of positions (whole events, or the rows a fold
needs), events at given positions, a time range, the head.

Functions taking a :class:`Connection` read inside the caller's transaction;
:func:`iter_log` and :func:`fold_batches` take the engine and read batch by batch, each in
a short transaction of its own, so that memory stays constant and a tail sees what commits
meanwhile. Every reading of a range of positions goes through one function, ``_span``,
which decides where the events of the range come from.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.engine import reading, translate_errors
from eventstore.errors import DecodeError, HeadMissing
from eventstore.ids import event_id_of
from eventstore.recorded import RecordedEvent, from_micros
from eventstore.schema import HEAD_ROW_ID, events, head, texts

# Also named here for the modules that read them from here.
from eventstore.timeindex import minute_of as minute_of
from eventstore.timeindex import recorded_minute as recorded_minute
from eventstore.timeindex import recorded_within as recorded_within

#: Events fetched per query by the streaming readers.
BATCH_SIZE = 1000

_type_text, _metadata_text = texts.alias("type_text"), texts.alias("metadata_text")

#: The log's rows with their texts: the columns of a :class:`RecordedEvent`, by name.
#: Outer joins, so that an event whose text is missing is read (and refused), not skipped.
EVENT_ROWS = sa.select(
    events.c.position,
    events.c.event_id,
    events.c.master_id,
    events.c.version,
    _type_text.c.text.label("type"),
    events.c.schema_version,
    events.c.data,
    _metadata_text.c.text.label("metadata"),
    events.c.recorded_at,
    events.c.hash,
).select_from(
    events.outerjoin(_type_text, _type_text.c.id == events.c.type_id).outerjoin(
        _metadata_text, _metadata_text.c.id == events.c.metadata_id
    )
)


def to_recorded(row: Any) -> RecordedEvent:
    """The :class:`RecordedEvent` of a row of :data:`EVENT_ROWS`; a row whose data or
    metadata is not a JSON object, or whose type is missing (written outside mastertrail),
    is a :class:`DecodeError`."""
    if row.type is None:
        raise DecodeError(f"the type of the event at position {row.position} is missing")
    return RecordedEvent(
        position=row.position,
        event_id=_event_id(row),
        master_id=row.master_id,
        version=row.version,
        type=row.type,
        schema_version=row.schema_version,
        data=_json_object(row, "data"),
        metadata=_json_object(row, "metadata"),
        recorded_at=from_micros(row.recorded_at),
        hash=bytes(row.hash).hex(),
    )


def _event_id(row: Any) -> uuid.UUID:
    """The row's event id, stored or derived; a row with neither is a :class:`DecodeError`."""
    try:
        return event_id_of(row.event_id, row.master_id, row.version, row.recorded_at)
    except ValueError as error:
        raise DecodeError(f"the event at position {row.position}: {error}") from error


def _json_object(row: Any, column: str) -> dict[str, Any]:
    try:
        value = json.loads(getattr(row, column))
    except (TypeError, ValueError):  # TypeError: a missing text
        value = None
    if not isinstance(value, dict):
        raise DecodeError(
            f"the {column} of the event at position {row.position} is not a JSON object"
        )
    return value


def read_stream(
    conn: Connection,
    master_id: int,
    *,
    from_version: int = 1,
    limit: int | None = None,
    since: int | None = None,
    until: int | None = None,
) -> list[RecordedEvent]:
    """The events of one master from ``from_version`` on, optionally only those recorded
    in ``[since, until]`` (microseconds since the epoch), in version order."""
    query = EVENT_ROWS.where(events.c.master_id == master_id)
    if from_version > 1:
        query = query.where(events.c.version >= from_version)
    if since is not None:
        query = query.where(events.c.recorded_at >= since)
    if until is not None:
        query = query.where(events.c.recorded_at <= until)
    query = query.order_by(events.c.version).limit(limit)
    return [to_recorded(row) for row in conn.execute(query)]


def read_range(
    conn: Connection,
    *,
    since: int | None = None,
    until: int | None = None,
    master_id: int | None = None,
) -> list[RecordedEvent]:
    """Events recorded in ``[since, until]`` (microseconds since the epoch; either end may
    be open), optionally of one master, in position order."""
    query = EVENT_ROWS.order_by(events.c.position).where(
        *recorded_within(conn.dialect, since, until)
    )
    if master_id is not None:
        query = query.where(events.c.master_id == master_id)
    return [to_recorded(row) for row in conn.execute(query)]


#: An event as a fold reads it: ``(position, master_id, version, type, schema_version,
#: data, recorded_at)``, the type name as text (None when its text is missing), the data as
#: the stored JSON text, ``recorded_at`` in microseconds since the epoch.
FoldRow = tuple[int, int, int, str | None, int, str, int]

#: Fold rows fetched per query by :func:`fold_batches`.
FOLD_BATCH = 10_000


def read_span(
    conn: Connection, *, after: int = 0, upto: int | None = None, limit: int | None = BATCH_SIZE
) -> list[RecordedEvent]:
    """The events with a position in ``(after, upto]`` (``upto`` None: no end), at most
    ``limit``, in position order."""
    return _span(conn, _read_events, after, upto, limit)


def read_after(conn: Connection, after: int = 0, limit: int = BATCH_SIZE) -> list[RecordedEvent]:
    """At most ``limit`` events with a position greater than ``after``, in position order."""
    return read_span(conn, after=after, limit=limit)


def fold_rows(
    conn: Connection, *, after: int = 0, upto: int | None = None, limit: int = FOLD_BATCH
) -> list[FoldRow]:
    """The :data:`FoldRow` of each event with a position in ``(after, upto]``, at most
    ``limit``, in position order: what a fold of the whole log reads, undecoded (row
    objects and :class:`RecordedEvent` would cost more than the fold itself)."""
    return _span(conn, _read_fold_rows, after, upto, limit)


def events_at(conn: Connection, positions: Iterable[int]) -> dict[int, RecordedEvent]:
    """The events at ``positions``, by position, read in one statement (a position that
    holds no event is left out)."""
    wanted = sorted(set(positions))
    if not wanted:
        return {}
    query = EVENT_ROWS.where(events.c.position.in_(wanted))
    return {row.position: to_recorded(row) for row in conn.execute(query)}


_Shape = TypeVar("_Shape")


def _span(
    conn: Connection,
    read: Callable[[Connection, int, int | None, int | None], list[_Shape]],
    after: int,
    upto: int | None,
    limit: int | None,
) -> list[_Shape]:
    """The events of the positions ``(after, upto]``, at most ``limit``, in position
    order, in the shape ``read`` gives the table's rows. Every event is in the events
    table today, so ``read`` reads all of them; when older events live elsewhere, this is
    where a range is split between there and the table, for every reader at once."""
    return read(conn, after, upto, limit)


def _read_events(
    conn: Connection, after: int, upto: int | None, limit: int | None
) -> list[RecordedEvent]:
    query = EVENT_ROWS.where(events.c.position > after)
    if upto is not None:
        query = query.where(events.c.position <= upto)
    query = query.order_by(events.c.position).limit(limit)
    return [to_recorded(row) for row in conn.execute(query)]


def _read_fold_rows(
    conn: Connection, after: int, upto: int | None, limit: int | None
) -> list[FoldRow]:
    """Read with the driver's own cursor, in the connection's transaction."""
    sql = (
        f"SELECT position, master_id, version, t.text, schema_version, data, recorded_at "
        f"FROM {events.name} LEFT JOIN {texts.name} t ON t.id = type_id "
        f"WHERE position > {int(after)}"
    )
    if upto is not None:
        sql += f" AND position <= {int(upto)}"
    sql += " ORDER BY position"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return driver_rows(conn, sql)


def driver_rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql``, read with the driver's own cursor in ``conn``'s transaction,
    which is begun here as SQLAlchemy begins it when there is none yet: a statement sent
    past SQLAlchemy would otherwise open a transaction on the server that SQLAlchemy does
    not know of, and its own begin on the same connection (with the isolation level it
    sets on MariaDB) would then fail."""
    if not conn.in_transaction():
        conn.begin()
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def holds(conn: Connection, position: int, hash_: bytes) -> bool:
    """Whether the event at ``position`` is the one whose chained hash is ``hash_``: a
    write whose commit was lost with its connection is in the log exactly when this holds
    for its last event (a hash covers the event and the whole log before it)."""
    found = conn.execute(sa.select(events.c.hash).where(events.c.position == position)).scalar()
    return found is not None and bytes(found) == hash_


def head_position(conn: Connection) -> int:
    """The position of the newest committed event (0 for an empty log); raises
    :class:`~eventstore.errors.HeadMissing` when the head row is gone."""
    found = conn.execute(sa.select(head.c.position).where(head.c.id == HEAD_ROW_ID)).scalar()
    if found is None:
        raise HeadMissing()
    return int(found)


def iter_log(
    engine: Engine, *, after: int = 0, limit: int | None = None, batch_size: int = BATCH_SIZE
) -> Iterator[RecordedEvent]:
    """Every event after position ``after`` (at most ``limit``), in position order, read in
    batches of ``batch_size``, each batch in its own short transaction."""
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        with translate_errors(), reading(engine) as conn:
            batch = read_span(conn, after=after, limit=size)
        yield from batch
        if len(batch) < size:
            return
        after = batch[-1].position
        if remaining is not None:
            remaining -= len(batch)


def fold_batches(
    engine: Engine, *, after: int = 0, batch_size: int = FOLD_BATCH
) -> Iterator[list[FoldRow]]:
    """:func:`fold_rows` of every event after position ``after``, a batch at a time, each
    batch read in its own short transaction; ends after the first short batch."""
    while True:
        with translate_errors(), reading(engine) as conn:
            batch = fold_rows(conn, after=after, limit=batch_size)
        yield batch
        if len(batch) < batch_size:
            return
        after = batch[-1][0]
