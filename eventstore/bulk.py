"""Loading a long history in bulk: events written exactly as :func:`eventstore.append`
would store them (texts interned, ids left to derivation, hashes chained on from the head),
with the driver's bulk path (``executemany`` on SQLite and MariaDB, ``COPY`` on
PostgreSQL), a batch per transaction, and the head moved to the last event at the end.

For a log that nothing else writes meanwhile (a generated history, an import): it takes
no lock between batches, and the head moves only once everything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore.ids import derived_event_id
from eventstore.links import link
from eventstore.schema import HEAD_ROW_ID, events, head
from eventstore.texts import text_ids


class BulkEvent(NamedTuple):
    """One event to load: its stream place, its encoded type and data, its metadata as
    canonical JSON text (:func:`eventstore.canonical_json`), and ``recorded_at`` in
    microseconds since the epoch."""

    master_id: int
    version: int
    type: str
    schema_version: int
    data: str
    metadata: str
    recorded_at: int


_COLUMNS = (
    "position",
    "event_id",
    "master_id",
    "version",
    "type_id",
    "schema_version",
    "data",
    "metadata_id",
    "recorded_at",
    "hash",
)

#: A row as the table stores it, in the order of ``_COLUMNS``.
_Stored = tuple[int, None, int, int, int, int, str, int, int, bytes]


def load(engine: Engine, source: Iterable[BulkEvent], *, batch: int = 50_000) -> int:
    """Append every event of ``source`` (in order) after the log's head, ``batch`` events
    per transaction, then move the head; returns the position of the last event. An
    event whose id its columns do not derive is refused (:class:`ValueError`) before its
    batch is written."""
    with engine.begin() as conn:
        found = conn.execute(
            sa.select(head.c.position, head.c.hash, head.c.last_master_id).where(
                head.c.id == HEAD_ROW_ID
            )
        ).one()
    position, previous, last_master = int(found.position), bytes(found.hash), found.last_master_id
    ids: dict[str, int] = {}
    write = _WRITERS[engine.dialect.name]
    raw = engine.raw_connection()
    try:
        for chunk in _chunks(source, batch):
            unknown = {t for e in chunk for t in (e.type, e.metadata) if t not in ids}
            if unknown:
                with engine.begin() as conn:
                    ids.update(text_ids(conn, unknown))
            rows: list[_Stored] = []
            for event in chunk:
                position += 1
                event_id = derived_event_id(event.master_id, event.version, event.recorded_at)
                if event_id is None:
                    raise ValueError(f"position {position}: no event id derives from its columns")
                previous = link(
                    previous,
                    position=position,
                    event_id=event_id,
                    master_id=event.master_id,
                    version=event.version,
                    type=event.type,
                    schema_version=event.schema_version,
                    data=event.data,
                    metadata=event.metadata,
                    recorded_at=event.recorded_at,
                )
                last_master = max(last_master, event.master_id)
                rows.append(
                    (
                        position,
                        None,
                        event.master_id,
                        event.version,
                        ids[event.type],
                        event.schema_version,
                        event.data,
                        ids[event.metadata],
                        event.recorded_at,
                        previous,
                    )
                )
            write(raw, rows)
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(
            head.update()
            .where(head.c.id == HEAD_ROW_ID)
            .values(position=position, hash=previous, last_master_id=last_master)
        )
    return position


def _chunks(source: Iterable[BulkEvent], size: int) -> Iterator[list[BulkEvent]]:
    chunk: list[BulkEvent] = []
    for event in source:
        chunk.append(event)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_sqlite(raw: Any, rows: list[_Stored]) -> None:
    cursor = raw.cursor()
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB while the indexes grow
    cursor.execute("BEGIN IMMEDIATE")
    cursor.executemany(
        f"INSERT INTO {events.name} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 10)})",
        rows,
    )
    cursor.execute("COMMIT")
    cursor.close()


def _write_postgresql(raw: Any, rows: list[_Stored]) -> None:
    conn = raw.driver_connection
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY {events.name} ({', '.join(_COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    conn.commit()


def _write_mysql(raw: Any, rows: list[_Stored]) -> None:
    cursor = raw.cursor()
    cursor.executemany(
        f"INSERT INTO {events.name} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * 10)})",
        rows,
    )
    raw.commit()
    cursor.close()


_WRITERS = {"sqlite": _write_sqlite, "postgresql": _write_postgresql, "mysql": _write_mysql}
