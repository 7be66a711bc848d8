"""Reading the log: one stream, the whole log after a position, a time range, the head.

Functions taking a :class:`Connection` read inside the caller's transaction;
:func:`iter_log` takes the engine and reads batch by batch, each in a short transaction
of its own, so that memory stays constant and a tail sees what commits meanwhile.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.engine import reading, translate_errors
from eventstore.errors import DecodeError, HeadMissing
from eventstore.ids import event_id_of
from eventstore.recorded import RecordedEvent, from_micros
from eventstore.schema import HEAD_ROW_ID, TIME_BUCKET, events, head, texts

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
    conn: Connection, master_id: int, *, from_version: int = 1, limit: int | None = None
) -> list[RecordedEvent]:
    """The events of one master from ``from_version`` on, in version order."""
    query = (
        EVENT_ROWS.where(events.c.master_id == master_id, events.c.version >= from_version)
        .order_by(events.c.version)
        .limit(limit)
    )
    return [to_recorded(row) for row in conn.execute(query)]


def read_after(conn: Connection, after: int = 0, limit: int = BATCH_SIZE) -> list[RecordedEvent]:
    """At most ``limit`` events with a position greater than ``after``, in position order."""
    query = EVENT_ROWS.where(events.c.position > after).order_by(events.c.position)
    return [to_recorded(row) for row in conn.execute(query.limit(limit))]


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


#: The minute of an event (``recorded_at / TIME_BUCKET``, :data:`~eventstore.schema.TIME_BUCKET`):
#: on SQLite a ``VIRTUAL`` generated column of the log, which its time index holds. SQLite's
#: planner seeks that index only for a condition on the column itself, not on the expression.
recorded_minute = sa.literal_column(f"{events.name}.recorded_minute", sa.BigInteger())


def minute_of(micros: int) -> int:
    """:data:`recorded_minute` of ``micros``, as SQLite's integer division (which truncates
    toward zero) computes it."""
    minute = abs(micros) // TIME_BUCKET
    return minute if micros >= 0 else -minute


def recorded_within(
    dialect: sa.Dialect, since: int | None, until: int | None
) -> list[sa.ColumnElement[bool]]:
    """The conditions of events recorded in ``[since, until]`` (microseconds; either end
    may be open), with, on SQLite, those its time index answers: the minutes."""
    conditions: list[sa.ColumnElement[bool]] = []
    if since is not None:
        conditions.append(events.c.recorded_at >= since)
    if until is not None:
        conditions.append(events.c.recorded_at <= until)
    if dialect.name == "sqlite":
        if since is not None:
            conditions.append(recorded_minute >= minute_of(since))
        if until is not None:
            conditions.append(recorded_minute <= minute_of(until))
    return conditions


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
            batch = read_after(conn, after, size)
        yield from batch
        if len(batch) < size:
            return
        after = batch[-1].position
        if remaining is not None:
            remaining -= len(batch)
