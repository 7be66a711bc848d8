"""Replay into a sandbox: copy a prefix of the log into another, empty database and build its
view there. The source is only read.

Events are appended in position order, each with its event id, type, schema version,
data, metadata and recording time, so the sandbox's positions, versions and hash chain
are exactly the source's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

import attrs
import sqlalchemy as sa

import eventstore
from eventstore import (
    EVENTS_TABLE,
    InvalidArgument,
    NewEvent,
    RecordedEvent,
    RegistryError,
    missing_sqlite_file,
    reading,
    to_micros,
)
from mastertrail.registry import Progress, Registry, VerifyReport
from mastertrail.when import When
from projections import view

#: Events copied per transaction.
BATCH = 500


class ReplayDiverged(RegistryError):
    """The sandbox's log came out different from the source's (a writer got in between)."""


@attrs.frozen
class ReplayResult:
    """What a replay copied, and how the sandbox verified."""

    events: int
    until_position: int
    masters: int
    report: VerifyReport


def replay(
    source: Registry, target: Registry, *, until: When, progress: Progress | None = None
) -> ReplayResult:
    """Copy the log of ``source`` up to ``until`` (a position, inclusive, or a time: the
    events recorded at or before it, up to the first one recorded after it) into the empty
    database of ``target``, rebuild the view there and verify it.

    Refused before anything is written (:class:`InvalidArgument`, or
    :class:`~mastertrail.SchemaMissing` for a source without a log): a target that holds
    any table but an empty schema of mastertrail's."""
    next(source.events(limit=1), None)  # a source without the schema raises SchemaMissing
    _check_empty(target)
    target.upgrade()
    copied = last_position = 0
    last_hash = ""
    batch: list[RecordedEvent] = []
    for event in prefix(source.events(), until):
        batch.append(event)
        if len(batch) == BATCH:
            _append(target, batch)
            copied += len(batch)
            if progress is not None:
                progress(copied, 0)
            batch = []
        last_position, last_hash = event.position, event.hash
    if batch:
        _append(target, batch)
        copied += len(batch)
    if copied:
        copy = next(target.events(after=last_position - 1, limit=1), None)
        if copy is None or copy.hash != last_hash:
            raise ReplayDiverged(f"the copy of position {last_position} has another hash")
    target.rebuild()
    return ReplayResult(copied, last_position, len(target.get_masters()), target.verify())


def prefix(events: Iterable[RecordedEvent], until: When) -> Iterator[RecordedEvent]:
    """The events of the log up to ``until``: a position (inclusive), or a time (events
    recorded at or before it, stopping at the first recorded after it)."""
    for event in events:
        if isinstance(until, dt.datetime):
            if event.recorded_at > until:
                return
        elif event.position > until:
            return
        yield event


def holds_masters_table(registry: Registry) -> bool:
    """True when the database of ``registry`` has a ``masters`` table with Buildbot's
    columns (a Buildbot database, or a registry); reading it writes nothing."""
    if missing_sqlite_file(registry.engine) is not None:
        return False
    with eventstore.translate_errors(), reading(registry.engine) as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table(view.masters.name):
            return False
        columns = {column["name"] for column in inspector.get_columns(view.masters.name)}
    return set(view.masters.c.keys()) <= columns


def _check_empty(target: Registry) -> None:
    """Refuse a target holding anything but an empty schema of mastertrail's."""
    if missing_sqlite_file(target.engine) is not None:
        return  # a new SQLite file
    url = target.engine.url.render_as_string(hide_password=True)
    with eventstore.translate_errors(), reading(target.engine) as conn:
        tables = sa.inspect(conn).get_table_names()
        others = [t for t in tables if t != view.masters.name and not t.startswith("mastertrail_")]
        if others:
            reason = f"holds other tables ({', '.join(sorted(others)[:5])}); replay needs an"
            raise InvalidArgument("--into", f"{reason} empty database", url)
        for table in {EVENTS_TABLE, view.masters.name} & set(tables):
            if conn.execute(sa.select(sa.literal(1)).select_from(sa.table(table))).first():
                what = "a log" if table == EVENTS_TABLE else "masters"
                raise InvalidArgument(
                    "--into", f"already holds {what}; replay needs an empty database", url
                )


def _append(target: Registry, events: list[RecordedEvent]) -> None:
    with eventstore.translate_errors(), target.engine.begin() as conn:
        for event in events:
            copy = NewEvent(
                event_id=event.event_id,
                type=event.type,
                schema_version=event.schema_version,
                data=event.data,
                metadata=event.metadata,
                recorded_at=to_micros(event.recorded_at),
            )
            result = eventstore.append(conn, event.master_id, event.version - 1, [copy])
            if result.positions != (event.position,):
                raise ReplayDiverged(
                    f"position {event.position} was copied to position {result.positions}"
                )


__all__ = ["BATCH", "ReplayDiverged", "ReplayResult", "holds_masters_table", "prefix", "replay"]
